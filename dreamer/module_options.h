// The network options an AgentConfig implies for the modules the learner and the actors both
// build (image CNN, grid encoder, RSSM, policy head). One definition, so a Policy built in an
// actor process always has the shapes of the weights the learner exports.
#pragma once

#include <cstdint>

#include "dreamer/agent_config.h"
#include "dreamer/models/grid_decoder.h"
#include "dreamer/models/grid_encoder.h"
#include "dreamer/models/image_encoder.h"
#include "dreamer/models/mlp.h"
#include "dreamer/models/rssm.h"

namespace dreamfleet::dreamer {

CnnOptions CnnOptionsFor(const AgentConfig& config);
// The grid encoder of a vector_encoder = "grid" config (side and channels from the env spec).
GridEncoderOptions GridEncoderOptionsFor(const AgentConfig& config);
GridDecoderOptions GridDecoderOptionsFor(const AgentConfig& config, int64_t feat);
RssmOptions RssmOptionsFor(const AgentConfig& config, int64_t embed_size);
MlpOptions PolicyHeadOptions(const AgentConfig& config);

}  // namespace dreamfleet::dreamer
