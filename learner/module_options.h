// The network options an AgentConfig implies for the modules the learner and the actors both
// build (RSSM, policy head). One definition, so a Policy built in an actor process always has the
// shapes of the weights the learner exports.
#pragma once

#include <cstdint>

#include "learner/agent_config.h"
#include "learner/models/mlp.h"
#include "learner/models/rssm.h"

namespace dreamfleet::learner {

RssmOptions RssmOptionsFor(const AgentConfig& config, int64_t embed_size);
MlpOptions PolicyHeadOptions(const AgentConfig& config);

}  // namespace dreamfleet::learner
