// Encoding of stored chunks: each field is kept as the raw bytes the actor sent or as one zstd
// frame of them; decoding checks sizes so a damaged chunk is reported, never read past.
#include "replay_server/chunk_store.h"

#include <zstd.h>

#include "absl/strings/str_cat.h"
#include "services/logging.h"
#include "services/status_macros.h"

namespace dreamfleet::replay {
namespace {

std::string Describe(const StoredChunk& chunk, const FieldSpec& spec) {
  return absl::StrCat("field \"", spec.name, "\" of stored chunk ", chunk.sequence, " of actor \"",
                      chunk.actor_id, "\"");
}

}  // namespace

absl::StatusOr<std::shared_ptr<StoredChunk>> ChunkStore::Encode(const v1::Chunk& chunk,
                                                                const Signature& signature) const {
  auto stored = std::make_shared<StoredChunk>();
  stored->actor_id = chunk.actor_id();
  stored->sequence = chunk.sequence();
  stored->weights_version = chunk.weights_version();
  stored->num_steps = chunk.num_steps();
  stored->compressed = compress_;
  stored->fields.resize(signature.fields().size());
  for (size_t i = 0; i < signature.fields().size(); ++i) {
    const FieldSpec& spec = signature.fields()[i];
    const v1::NamedTensor* tensor = FindField(chunk, spec.name);
    if (tensor == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat("chunk ", chunk.sequence(), " of actor ",
                                                     services::QuoteClientText(chunk.actor_id()),
                                                     " has no field \"", spec.name, "\""));
    }
    const std::string& data = tensor->tensor().data();
    const size_t expected = spec.step_bytes * chunk.num_steps();
    if (data.size() != expected) {
      return absl::InvalidArgumentError(
          absl::StrCat("field \"", spec.name, "\" of chunk ", chunk.sequence(), " of actor ",
                       services::QuoteClientText(chunk.actor_id()), " has ", data.size(),
                       " bytes, expected ", expected));
    }
    std::string& out = stored->fields[i];
    if (compress_) {
      out.resize(ZSTD_compressBound(data.size()));
      const size_t n = ZSTD_compress(out.data(), out.size(), data.data(), data.size(), zstd_level_);
      if (ZSTD_isError(n)) {
        return absl::InternalError(
            absl::StrCat("zstd compression of field \"", spec.name, "\": ", ZSTD_getErrorName(n)));
      }
      out.resize(n);
      out.shrink_to_fit();
    } else {
      out = data;
    }
    stored->bytes += out.size();
  }
  return stored;
}

absl::Status ChunkStore::ToRecord(const StoredChunk& chunk, const Signature& signature,
                                  v1::StoredChunkRecord* record) {
  record->set_first_step_id(chunk.first_id);
  record->set_insert_time_unix_ms(chunk.insert_time_ms);
  v1::Chunk* out = record->mutable_chunk();
  out->set_actor_id(chunk.actor_id);
  out->set_sequence(chunk.sequence);
  out->set_num_steps(chunk.num_steps);
  out->set_weights_version(chunk.weights_version);
  // A span over the whole chunk; the shared_ptr does not own (the caller keeps the chunk alive).
  const std::vector<ChunkSpan> whole = {
      {std::shared_ptr<const StoredChunk>(std::shared_ptr<const StoredChunk>(), &chunk), 0,
       chunk.num_steps}};
  Reader reader;
  for (size_t f = 0; f < signature.fields().size(); ++f) {
    const FieldSpec& spec = signature.fields()[f];
    v1::NamedTensor* named = out->add_data();
    named->set_name(spec.name);
    v1::TensorProto* tensor = named->mutable_tensor();
    tensor->set_dtype(spec.dtype);
    tensor->add_shape(chunk.num_steps);
    for (int64_t d : spec.shape) tensor->add_shape(d);
    std::string* bytes = tensor->mutable_data();
    bytes->reserve(spec.step_bytes * chunk.num_steps);
    RETURN_IF_ERROR(reader.Append(whole, signature, f, bytes));
  }
  return absl::OkStatus();
}

absl::StatusOr<const std::string*> ChunkStore::Reader::Raw(const StoredChunk& chunk,
                                                           const FieldSpec& spec, size_t field) {
  const std::string& stored = chunk.fields[field];
  const size_t expected = spec.step_bytes * chunk.num_steps;
  if (!chunk.compressed) {
    if (stored.size() != expected) {
      return absl::DataLossError(absl::StrCat(Describe(chunk, spec), " holds ", stored.size(),
                                              " bytes, expected ", expected));
    }
    return &stored;
  }
  std::vector<std::optional<std::string>>& fields = decompressed_[&chunk];
  if (fields.empty()) fields.resize(chunk.fields.size());
  std::optional<std::string>& raw = fields[field];
  if (raw.has_value()) return &*raw;
  std::string out(expected, '\0');
  const size_t n = ZSTD_decompress(out.data(), out.size(), stored.data(), stored.size());
  if (ZSTD_isError(n)) {
    return absl::DataLossError(
        absl::StrCat(Describe(chunk, spec), " does not decompress: ", ZSTD_getErrorName(n)));
  }
  if (n != expected) {
    return absl::DataLossError(
        absl::StrCat(Describe(chunk, spec), " decompresses to ", n, " bytes, expected ", expected));
  }
  raw = std::move(out);
  return &*raw;
}

absl::Status ChunkStore::Reader::Append(const std::vector<ChunkSpan>& spans,
                                        const Signature& signature, size_t field,
                                        std::string* out) {
  if (field >= signature.fields().size()) {
    return absl::InternalError(
        absl::StrCat("field index ", field, " is outside the signature ", signature.DebugString()));
  }
  const FieldSpec& spec = signature.fields()[field];
  for (const ChunkSpan& span : spans) {
    const StoredChunk& chunk = *span.chunk;
    if (chunk.fields.size() != signature.fields().size()) {
      return absl::InternalError(absl::StrCat(
          "stored chunk ", chunk.sequence, " of actor \"", chunk.actor_id, "\" has ",
          chunk.fields.size(), " fields but the signature has ", signature.fields().size()));
    }
    if (uint64_t{span.offset} + span.count > chunk.num_steps) {
      return absl::InternalError(absl::StrCat("steps [", span.offset, ", ",
                                              uint64_t{span.offset} + span.count, ") are outside ",
                                              "stored chunk ", chunk.sequence, " of actor \"",
                                              chunk.actor_id, "\" (", chunk.num_steps, " steps)"));
    }
    ASSIGN_OR_RETURN(const std::string* raw, Raw(chunk, spec, field));
    out->append(raw->data() + span.offset * spec.step_bytes, span.count * spec.step_bytes);
  }
  return absl::OkStatus();
}

}  // namespace dreamfleet::replay
