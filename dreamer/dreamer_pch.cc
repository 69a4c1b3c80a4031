// Anchors the precompiled <torch/torch.h> so the library always has one translation unit.
#include <torch/torch.h>
