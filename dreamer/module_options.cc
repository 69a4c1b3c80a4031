#include "dreamer/module_options.h"

namespace dreamfleet::dreamer {

CnnOptions CnnOptionsFor(const AgentConfig& c) {
  return CnnOptions()
      .height(c.image_height)
      .width(c.image_width)
      .channels(c.image_channels)
      .depth(c.depth)
      .mults(c.cnn_mults)
      .norm(c.norm)
      .mode(c.cnn)
      .channels_last(c.channels_last);
}

GridEncoderOptions GridEncoderOptionsFor(const AgentConfig& c) {
  return GridEncoderOptions(c.vector_grid_side(), c.vector_grid_channels)
      .depth(c.depth * 4)
      .units(c.units)
      .layers(c.enc_layers)
      .norm(c.norm);
}

GridDecoderOptions GridDecoderOptionsFor(const AgentConfig& c, int64_t feat) {
  return GridDecoderOptions(feat, c.vector_grid_side(), c.vector_grid_channels)
      .depth(c.depth * 4)
      .units(c.units)
      .layers(c.enc_layers)
      .norm(c.norm);
}

RssmOptions RssmOptionsFor(const AgentConfig& c, int64_t embed_size) {
  return RssmOptions()
      .embed(embed_size)
      .num_actions(c.num_actions)
      .deter(c.deter)
      .hidden(c.hidden)
      .stoch(c.stoch)
      .classes(c.classes)
      .blocks(c.blocks)
      .unimix(c.unimix)
      .norm(c.norm);
}

MlpOptions PolicyHeadOptions(const AgentConfig& c) {
  return MlpOptions(c.feat_size(), c.units, c.ac_layers)
      .out(c.num_actions)
      .outscale(c.policy_outscale)
      .norm(c.norm);
}

}  // namespace dreamfleet::dreamer
