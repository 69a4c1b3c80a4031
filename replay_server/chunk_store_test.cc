// ChunkStore on real chunks: encoding round-trips through records and spans, raw and zstd, and
// damaged or misused stored chunks are reported with the field and chunk they concern.
#include "replay_server/chunk_store.h"

#include <algorithm>
#include <cstring>
#include <random>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "replay_server/test_util.h"

namespace dreamfleet::replay {
namespace {

using testing::ChunkSpec;
using testing::FindField;
using ::testing::HasSubstr;
using testing::MakeChunk;

constexpr int kImageSize = 16;
constexpr size_t kImageStepBytes = kImageSize * kImageSize * 3;

// A 32-step chunk whose images are noise for the first half (incompressible) and flat for the
// second; actions and rewards vary per step.
v1::Chunk RealisticChunk(uint64_t sequence = 3) {
  ChunkSpec spec;
  spec.actor_id = "actor-9";
  spec.sequence = sequence;
  spec.num_steps = 32;
  spec.image_size = kImageSize;
  spec.first_step_value = 200;
  spec.episode_starts = {0, 20};
  spec.episode_ends = {19};
  spec.reward = 0.25f;
  v1::Chunk chunk = MakeChunk(spec);
  chunk.set_weights_version(17);
  std::mt19937 rng(7);
  std::string& image = *FindField(&chunk, "image")->mutable_tensor()->mutable_data();
  for (size_t i = 0; i < 16 * kImageStepBytes; ++i) image[i] = static_cast<char>(rng());
  std::string& reward = *FindField(&chunk, "reward")->mutable_tensor()->mutable_data();
  for (int k = 0; k < 32; ++k) {
    const float r = 0.5f * k - 3.0f;
    std::memcpy(reward.data() + 4 * k, &r, 4);
  }
  return chunk;
}

Signature SignatureOf(const v1::Chunk& chunk) {
  absl::StatusOr<Signature> signature = Signature::FromChunk(chunk, "default");
  EXPECT_TRUE(signature.ok()) << signature.status();
  return *signature;
}

std::shared_ptr<StoredChunk> EncodeOrDie(const ChunkStore& store, const v1::Chunk& chunk,
                                         const Signature& signature) {
  absl::StatusOr<std::shared_ptr<StoredChunk>> stored = store.Encode(chunk, signature);
  EXPECT_TRUE(stored.ok()) << stored.status();
  return stored.ok() ? *stored : nullptr;
}

TEST(ChunkStoreTest, RawAndCompressedChunksRoundTripThroughARecordInSignatureOrder) {
  const v1::Chunk original = RealisticChunk();
  const Signature signature = SignatureOf(original);
  // The same chunk with its fields sent in reverse order is stored in signature order.
  v1::Chunk reversed = original;
  std::reverse(reversed.mutable_data()->begin(), reversed.mutable_data()->end());
  for (bool compress : {false, true}) {
    SCOPED_TRACE(compress ? "zstd" : "raw");
    std::shared_ptr<StoredChunk> stored = EncodeOrDie(ChunkStore(compress), reversed, signature);
    ASSERT_NE(stored, nullptr);
    EXPECT_EQ(stored->compressed, compress);
    stored->first_id = 1234;
    stored->insert_time_ms = 1700000000123;
    v1::StoredChunkRecord record;
    ASSERT_TRUE(ChunkStore::ToRecord(*stored, signature, &record).ok());
    EXPECT_EQ(record.first_step_id(), 1234u);
    EXPECT_EQ(record.insert_time_unix_ms(), 1700000000123);
    const v1::Chunk& decoded = record.chunk();
    EXPECT_EQ(decoded.actor_id(), "actor-9");
    EXPECT_EQ(decoded.sequence(), 3u);
    EXPECT_EQ(decoded.num_steps(), 32u);
    EXPECT_EQ(decoded.weights_version(), 17);
    // Field for field, in signature order, the bytes the actor sent.
    ASSERT_EQ(decoded.data_size(), original.data_size());
    for (int i = 0; i < original.data_size(); ++i) {
      EXPECT_EQ(decoded.data(i).name(), signature.fields()[i].name);
      EXPECT_EQ(decoded.data(i).SerializeAsString(), original.data(i).SerializeAsString())
          << decoded.data(i).name();
    }
  }
}

TEST(ChunkStoreTest, CompressedChunksHoldFewerBytesThanRawOnes) {
  const v1::Chunk chunk = RealisticChunk();
  const Signature signature = SignatureOf(chunk);
  std::shared_ptr<StoredChunk> raw = EncodeOrDie(ChunkStore(false), chunk, signature);
  std::shared_ptr<StoredChunk> packed = EncodeOrDie(ChunkStore(true), chunk, signature);
  ASSERT_NE(raw, nullptr);
  ASSERT_NE(packed, nullptr);
  EXPECT_EQ(raw->bytes, signature.step_bytes() * 32);
  size_t sum = 0;
  for (const std::string& field : packed->fields) sum += field.size();
  EXPECT_EQ(packed->bytes, sum);
  // The flat half of the images compresses; the noise half cannot, so more than half remains.
  const size_t image = signature.FieldIndex("image");
  EXPECT_LT(packed->fields[image].size(), raw->fields[image].size() * 3 / 4);
  EXPECT_GT(packed->fields[image].size(), raw->fields[image].size() / 2);
  EXPECT_LT(packed->bytes, raw->bytes);
}

TEST(ChunkStoreTest, ReaderJoinsSpansOfSeveralChunksAtTheirOffsets) {
  ChunkSpec spec;
  spec.num_steps = 8;
  spec.first_step_value = 10;
  spec.episode_starts = {0};
  const v1::Chunk first = MakeChunk(spec);
  spec.sequence = 1;
  spec.first_step_value = 18;
  spec.episode_starts = {};
  const v1::Chunk second = MakeChunk(spec);
  const Signature signature = SignatureOf(first);
  const size_t image = signature.FieldIndex("image");
  const size_t action = signature.FieldIndex("action");
  for (bool compress : {false, true}) {
    SCOPED_TRACE(compress ? "zstd" : "raw");
    const ChunkStore store(compress);
    // Steps 5..7 of the first chunk, then 0..3 of the second: values 15..21.
    const std::vector<ChunkSpan> spans = {{EncodeOrDie(store, first, signature), 5, 3},
                                          {EncodeOrDie(store, second, signature), 0, 4}};
    ChunkStore::Reader reader;
    std::string images;
    std::string actions;
    ASSERT_TRUE(reader.Append(spans, signature, image, &images).ok());
    ASSERT_TRUE(reader.Append(spans, signature, action, &actions).ok());
    ASSERT_EQ(images.size(), 7 * 48u);
    ASSERT_EQ(actions.size(), 7 * 8u);
    for (int t = 0; t < 7; ++t) {
      EXPECT_EQ(static_cast<uint8_t>(images[t * 48]), 15 + t);
      EXPECT_EQ(static_cast<uint8_t>(images[t * 48 + 47]), 15 + t);
      float a;
      std::memcpy(&a, actions.data() + t * 8, 4);
      EXPECT_EQ(a, 15.0f + t);
    }
  }
}

TEST(ChunkStoreTest, EncodeRejectsAChunkMissingASignatureFieldNamingIt) {
  const v1::Chunk full = RealisticChunk();
  const Signature signature = SignatureOf(full);
  v1::Chunk partial = full;
  partial.mutable_data()->RemoveLast();  // is_terminal
  absl::StatusOr<std::shared_ptr<StoredChunk>> stored = ChunkStore(true).Encode(partial, signature);
  EXPECT_TRUE(absl::IsInvalidArgument(stored.status())) << stored.status();
  EXPECT_THAT(stored.status().message(),
              HasSubstr("chunk 3 of actor \"actor-9\" has no field \"is_terminal\""));
}

TEST(ChunkStoreTest, EncodeRejectsAFieldWhoseByteCountDoesNotMatchTheSignature) {
  const v1::Chunk good = RealisticChunk();
  const Signature signature = SignatureOf(good);
  v1::Chunk bad = good;
  FindField(&bad, "reward")->mutable_tensor()->mutable_data()->resize(12);
  for (bool compress : {false, true}) {
    absl::StatusOr<std::shared_ptr<StoredChunk>> stored =
        ChunkStore(compress).Encode(bad, signature);
    EXPECT_TRUE(absl::IsInvalidArgument(stored.status())) << stored.status();
    EXPECT_THAT(stored.status().message(),
                HasSubstr("field \"reward\" of chunk 3 of actor \"actor-9\" has 12 bytes, "
                          "expected 128"));
  }
}

TEST(ChunkStoreTest, ATruncatedZstdFieldIsDataLossNamingTheFieldAndChunk) {
  const v1::Chunk chunk = RealisticChunk();
  const Signature signature = SignatureOf(chunk);
  std::shared_ptr<StoredChunk> stored = EncodeOrDie(ChunkStore(true), chunk, signature);
  ASSERT_NE(stored, nullptr);
  const size_t image = signature.FieldIndex("image");
  stored->fields[image].resize(stored->fields[image].size() / 2);
  v1::StoredChunkRecord record;
  const absl::Status status = ChunkStore::ToRecord(*stored, signature, &record);
  EXPECT_TRUE(absl::IsDataLoss(status)) << status;
  EXPECT_THAT(status.message(),
              HasSubstr("field \"image\" of stored chunk 3 of actor \"actor-9\" does not "
                        "decompress"));
}

TEST(ChunkStoreTest, AZstdFieldOfTheWrongLengthIsDataLoss) {
  const v1::Chunk chunk = RealisticChunk();
  const Signature signature = SignatureOf(chunk);
  const ChunkStore store(true);
  std::shared_ptr<StoredChunk> stored = EncodeOrDie(store, chunk, signature);
  ASSERT_NE(stored, nullptr);
  // A valid frame of another chunk's (shorter) reward field in place of this one's.
  ChunkSpec spec;
  spec.num_steps = 8;
  spec.episode_starts = {0};
  const v1::Chunk shorter = MakeChunk(spec);
  std::shared_ptr<StoredChunk> other = EncodeOrDie(store, shorter, SignatureOf(shorter));
  ASSERT_NE(other, nullptr);
  const size_t reward = signature.FieldIndex("reward");
  stored->fields[reward] = other->fields[SignatureOf(shorter).FieldIndex("reward")];
  ChunkStore::Reader reader;
  std::string out;
  const absl::Status status = reader.Append({{stored, 0, 32}}, signature, reward, &out);
  EXPECT_TRUE(absl::IsDataLoss(status)) << status;
  EXPECT_THAT(status.message(),
              HasSubstr("field \"reward\" of stored chunk 3 of actor \"actor-9\" decompresses "
                        "to 32 bytes, expected 128"));
}

TEST(ChunkStoreTest, ARawFieldOfTheWrongLengthIsDataLossNotAnOverread) {
  const v1::Chunk chunk = RealisticChunk();
  const Signature signature = SignatureOf(chunk);
  std::shared_ptr<StoredChunk> stored = EncodeOrDie(ChunkStore(false), chunk, signature);
  ASSERT_NE(stored, nullptr);
  const size_t action = signature.FieldIndex("action");
  stored->fields[action].resize(40);
  ChunkStore::Reader reader;
  std::string out;
  const absl::Status status = reader.Append({{stored, 30, 2}}, signature, action, &out);
  EXPECT_TRUE(absl::IsDataLoss(status)) << status;
  EXPECT_THAT(status.message(), HasSubstr("field \"action\" of stored chunk 3 of actor "
                                          "\"actor-9\" holds 40 bytes, expected 256"));
  EXPECT_TRUE(out.empty());
}

TEST(ChunkStoreTest, ASpanOutsideItsChunkOrAnUnknownFieldIsAnInternalError) {
  const v1::Chunk chunk = RealisticChunk();
  const Signature signature = SignatureOf(chunk);
  std::shared_ptr<StoredChunk> stored = EncodeOrDie(ChunkStore(false), chunk, signature);
  ASSERT_NE(stored, nullptr);
  ChunkStore::Reader reader;
  std::string out;
  absl::Status status = reader.Append({{stored, 30, 4}}, signature, 0, &out);
  EXPECT_TRUE(absl::IsInternal(status)) << status;
  EXPECT_THAT(status.message(), HasSubstr("steps [30, 34) are outside stored chunk 3"));
  status = reader.Append({{stored, 0, 1}}, signature, signature.fields().size(), &out);
  EXPECT_TRUE(absl::IsInternal(status)) << status;
  EXPECT_THAT(status.message(), HasSubstr("field index 6 is outside the signature"));
  EXPECT_TRUE(out.empty());
}

TEST(ChunkStoreTest, ReaderDecompressesEachFieldOnceUntilCleared) {
  const v1::Chunk chunk = RealisticChunk();
  const Signature signature = SignatureOf(chunk);
  std::shared_ptr<StoredChunk> stored = EncodeOrDie(ChunkStore(true), chunk, signature);
  ASSERT_NE(stored, nullptr);
  const size_t image = signature.FieldIndex("image");
  ASSERT_EQ(chunk.data(0).name(), "image");
  ChunkStore::Reader reader;
  std::string before;
  ASSERT_TRUE(reader.Append({{stored, 0, 4}}, signature, image, &before).ok());
  // Damage the stored frame: the reader still serves the copy it decompressed.
  stored->fields[image].resize(8);
  std::string cached;
  ASSERT_TRUE(reader.Append({{stored, 0, 4}}, signature, image, &cached).ok());
  EXPECT_EQ(cached, before);
  EXPECT_EQ(cached, chunk.data(0).tensor().data().substr(0, 4 * kImageStepBytes));
  reader.Clear();
  EXPECT_TRUE(absl::IsDataLoss(reader.Append({{stored, 0, 4}}, signature, image, &cached)));
}

}  // namespace
}  // namespace dreamfleet::replay
