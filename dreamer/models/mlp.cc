#include "dreamer/models/mlp.h"

#include "dreamer/models/init.h"

namespace dreamfleet::dreamer {

MlpImpl::MlpImpl(MlpOptions options) : options_(std::move(options)) {
  linears_ = register_module("linears", torch::nn::ModuleList());
  norms_ = register_module("norms", torch::nn::ModuleList());
  int64_t in = options_.in();
  for (int64_t i = 0; i < options_.layers(); ++i) {
    torch::nn::Linear linear(in, options_.units());
    InitLinear(linear);
    linears_->push_back(linear);
    norms_->push_back(Norm(NormOptions(options_.units(), options_.norm())));
    in = options_.units();
  }
  if (options_.out() > 0) {
    out_ = register_module("out", torch::nn::Linear(in, options_.out()));
    InitLinear(out_, options_.outscale());
  }
}

int64_t MlpImpl::out_size() const {
  if (options_.out() > 0) return options_.out();
  return options_.layers() > 0 ? options_.units() : options_.in();
}

torch::Tensor MlpImpl::forward(torch::Tensor x) {
  for (size_t i = 0; i < linears_->size(); ++i) {
    x = linears_[i]->as<torch::nn::Linear>()->forward(x);
    x = torch::silu(norms_[i]->as<Norm>()->forward(x));
  }
  if (out_) x = out_->forward(x);
  return x;
}

}  // namespace dreamfleet::dreamer
