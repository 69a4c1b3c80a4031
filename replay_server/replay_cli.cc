#include "replay_server/replay_cli.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <map>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "dreamfleet/v1/replay.grpc.pb.h"
#include "google/protobuf/util/json_util.h"
#include "replay_server/image_export.h"
#include "replay_server/sharded_replay_client.h"
#include "services/command_line.h"
#include "services/grpc_util.h"
#include "services/status_macros.h"
#include "services/tensor_codec.h"

namespace dreamfleet::replay {
namespace {

constexpr char kUsage[] =
    "usage: dreamfleet replay info|episodes|export [flags]   (dreamfleet replay <command> --help)";

struct CommonFlags {
  std::string address;
  std::string table;
  bool json = false;
  double timeout_s = 30;
  services::ChannelOptions channel;  // TLS and the reader token of the config (not a flag)
};

std::string Json(const google::protobuf::Message& message) {
  std::string out;
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = false;
  options.preserve_proto_field_names = true;
  (void)google::protobuf::util::MessageToJsonString(message, &out, options);
  return out;
}

std::string Bytes(uint64_t bytes) {
  if (bytes >= (1ull << 30)) return absl::StrFormat("%.2f GiB", bytes / double(1ull << 30));
  if (bytes >= (1ull << 20)) return absl::StrFormat("%.1f MiB", bytes / double(1ull << 20));
  if (bytes >= (1ull << 10)) return absl::StrFormat("%.1f KiB", bytes / 1024.0);
  return absl::StrCat(bytes, " B");
}

std::string Time(int64_t unix_ms) {
  return absl::FormatTime("%Y-%m-%d %H:%M:%S", absl::FromUnixMillis(unix_ms), absl::UTCTimeZone());
}

// The addresses to query: --address, else the config's shards. Sets the channels' security from
// the config (TLS, the reader role's token), which --address uses too.
absl::StatusOr<std::vector<std::string>> Addresses(const services::CommandLine& command_line,
                                                   CommonFlags* flags) {
  ASSIGN_OR_RETURN(services::Config config, command_line.LoadConfig());
  ASSIGN_OR_RETURN(flags->channel.security,
                   services::MakeClientSecurity(config.security, services::Role::kReader));
  if (!flags->address.empty()) return std::vector<std::string>{flags->address};
  return ShardAddresses(config.replay);
}

class Shard {
 public:
  Shard(const std::string& address, const CommonFlags& flags)
      : address_(address),
        timeout_(absl::Seconds(flags.timeout_s)),
        stub_(v1::ReplayService::NewStub(services::CreateChannel(address, flags.channel))) {}
  template <typename Request, typename Response>
  absl::Status Call(grpc::Status (v1::ReplayService::Stub::*method)(grpc::ClientContext*,
                                                                    const Request&, Response*),
                    const Request& request, Response* response, const char* name) {
    grpc::ClientContext context;
    services::SetDeadline(&context, timeout_);
    return services::FromGrpcStatus(((*stub_).*method)(&context, request, response),
                                    absl::StrCat(name, " to ", address_));
  }
  v1::ReplayService::Stub* stub() { return stub_.get(); }
  absl::Duration timeout() const { return timeout_; }
  const std::string& address() const { return address_; }

 private:
  std::string address_;
  absl::Duration timeout_;
  std::unique_ptr<v1::ReplayService::Stub> stub_;
};

void PrintTable(const v1::TableInfo& t, const std::string& shard, const std::string& address,
                std::ostream& out) {
  out << shard << " @ " << address << "  table \"" << t.name() << "\"\n";
  out << "  size        " << t.size_steps() << " / " << t.capacity_steps() << " steps (evicted "
      << t.evicted_steps() << ")\n";
  out << "  items       " << t.items() << " (T = " << t.sequence_length() << ", selector "
      << t.selector() << ")\n";
  out << "  episodes    " << t.episodes() << "\n";
  out << "  inserted    " << t.inserted_steps() << " steps; sampled " << t.sampled_items()
      << " items (" << t.sampled_steps() << " steps)\n";
  out << "  memory      " << Bytes(t.bytes()) << " of step data\n";
  const v1::RateLimiterInfo& l = t.limiter();
  out << "  limiter     samples_per_insert " << l.samples_per_insert() << ", tolerance "
      << l.tolerance() << ", min size " << l.min_size_to_sample() << "; inserts "
      << (l.inserts_blocked() ? "BLOCKED" : "flowing") << ", samples "
      << (l.samples_blocked() ? "BLOCKED" : "flowing") << "; waited "
      << absl::StrFormat("%.1f", l.insert_wait_seconds()) << " s inserting, "
      << absl::StrFormat("%.1f", l.sample_wait_seconds()) << " s sampling\n";
  std::vector<std::string> fields;
  for (const v1::TensorSpec& spec : t.signature()) {
    fields.push_back(absl::StrCat(spec.name(), " ", services::DTypeName(spec.dtype()),
                                  services::ShapeString(std::vector<int64_t>(
                                      spec.shape().begin(), spec.shape().end()))));
  }
  out << "  signature   " << (fields.empty() ? "(none yet)" : absl::StrJoin(fields, ", ")) << "\n";
  // Stream ids (actor/env-i/incarnation) are long: the column is as wide as the longest.
  size_t width = 0;
  for (const v1::ActorCount& actor : t.actors()) width = std::max(width, actor.actor_id().size());
  for (const v1::ActorCount& actor : t.actors()) {
    out << "  actor       " << std::left << std::setw(static_cast<int>(width) + 2)
        << actor.actor_id() << std::right << actor.steps() << " steps, " << actor.episodes()
        << " episodes\n";
  }
}

int Info(const std::vector<std::string>& addresses, const CommonFlags& flags, std::ostream& out,
         std::ostream& err) {
  int failures = 0;
  std::vector<std::string> json;
  for (const std::string& address : addresses) {
    Shard shard(address, flags);
    v1::InfoRequest request;
    request.set_table(flags.table);
    v1::InfoResponse response;
    absl::Status status = shard.Call(&v1::ReplayService::Stub::Info, request, &response, "Info");
    if (!status.ok()) {
      err << "error: " << status.message() << "\n";
      ++failures;
      if (flags.json) json.push_back(absl::StrCat("{\"address\":\"", address, "\",\"error\":",
                                                  "\"unavailable\"}"));
      continue;
    }
    if (flags.json) {
      json.push_back(absl::StrCat("{\"address\":\"", address, "\",\"info\":", Json(response), "}"));
      continue;
    }
    for (const v1::TableInfo& table : response.tables()) {
      PrintTable(table, response.shard(), address, out);
    }
  }
  if (flags.json) out << "{\"shards\":[" << absl::StrJoin(json, ",") << "]}\n";
  return failures == 0 ? 0 : 1;
}

int Episodes(const std::vector<std::string>& addresses, const CommonFlags& flags,
             const v1::ListEpisodesRequest& base, bool all, std::ostream& out,
             std::ostream& err) {
  int failures = 0;
  std::vector<std::string> json;
  bool header = false;
  int actor_width = 16;
  for (const std::string& address : addresses) {
    Shard shard(address, flags);
    v1::ListEpisodesRequest request = base;
    request.set_table(flags.table);
    while (true) {
      v1::ListEpisodesResponse response;
      absl::Status status =
          shard.Call(&v1::ReplayService::Stub::ListEpisodes, request, &response, "ListEpisodes");
      if (!status.ok()) {
        err << "error: " << status.message() << "\n";
        ++failures;
        break;
      }
      if (flags.json) {
        json.push_back(absl::StrCat("{\"address\":\"", address, "\",\"page\":", Json(response), "}"));
      } else {
        // The actor column fits the longest stream id seen so far (they run to ~30 chars).
        for (const v1::EpisodeInfo& e : response.episodes()) {
          actor_width = std::max(actor_width, static_cast<int>(e.actor_id().size()));
        }
        if (!header) {
          out << absl::StrFormat("%-22s %-10s %-*s %8s %10s %-9s %s\n", "shard", "id", actor_width,
                                 "actor", "length", "return", "status", "started (UTC)");
          header = true;
        }
        for (const v1::EpisodeInfo& e : response.episodes()) {
          const std::string state =
              e.complete() ? (e.truncated() ? "truncated" : "complete") : "running";
          out << absl::StrFormat("%-22s %-10d %-*s %8d %10.3f %-9s %s\n", address, e.id(),
                                 actor_width, e.actor_id(), e.length(), e.episode_return(), state,
                                 Time(e.start_time_unix_ms()));
        }
        if (!all && !response.next_page_token().empty()) {
          out << "(" << response.total_matching() << " matching on " << address
              << "; next page: --page-token " << response.next_page_token() << ")\n";
        }
      }
      if (!all || response.next_page_token().empty()) break;
      request.set_page_token(response.next_page_token());
    }
  }
  if (flags.json) out << "{\"pages\":[" << absl::StrJoin(json, ",") << "]}\n";
  return failures == 0 ? 0 : 1;
}

// JSON of one non-image field: per step a number or an array of numbers.
std::string FieldJson(const v1::DType dtype, const std::vector<int64_t>& step_shape,
                      const std::string& data, uint64_t steps) {
  const size_t size = services::DTypeSize(dtype);
  const int64_t per_step = services::NumElements(step_shape);
  std::vector<std::string> rows;
  for (uint64_t s = 0; s < steps; ++s) {
    std::vector<std::string> values;
    for (int64_t i = 0; i < per_step; ++i) {
      const char* p = data.data() + (s * per_step + i) * size;
      switch (dtype) {
        case v1::DTYPE_FLOAT32: {
          float v;
          std::memcpy(&v, p, 4);
          values.push_back(std::isfinite(v) ? absl::StrCat(v) : "null");
          break;
        }
        case v1::DTYPE_INT32: {
          int32_t v;
          std::memcpy(&v, p, 4);
          values.push_back(absl::StrCat(v));
          break;
        }
        case v1::DTYPE_BOOL:
          values.push_back(*p ? "true" : "false");
          break;
        default:
          values.push_back(absl::StrCat(static_cast<uint8_t>(*p)));
      }
    }
    rows.push_back(step_shape.empty() ? values[0] : absl::StrCat("[", absl::StrJoin(values, ","), "]"));
  }
  return absl::StrCat("[", absl::StrJoin(rows, ","), "]");
}

int Export(const std::string& address, const CommonFlags& flags, uint64_t episode_id,
           const std::string& path, const std::string& field, int fps, int per_row,
           std::ostream& out, std::ostream& err) {
  const bool gif = absl::EndsWith(path, ".gif");
  if (!gif && !absl::EndsWith(path, ".png")) {
    err << "error: --out must end in .gif or .png, got \"" << path << "\"\n";
    return 2;
  }
  Shard shard(address, flags);
  v1::GetEpisodeRequest request;
  request.set_table(flags.table);
  request.set_episode_id(episode_id);
  grpc::ClientContext context;
  services::SetDeadline(&context, shard.timeout() * 10);
  auto reader = shard.stub()->GetEpisode(&context, request);
  v1::GetEpisodeResponse message;
  v1::EpisodeInfo info;
  struct Column {
    v1::DType dtype;
    std::vector<int64_t> step_shape;
    std::string data;
  };
  std::map<std::string, Column> columns;
  std::vector<std::string> order;
  uint64_t steps = 0;
  while (reader->Read(&message)) {
    if (message.has_info()) info = message.info();
    for (const v1::NamedTensor& t : message.data()) {
      Column& column = columns[t.name()];
      if (column.data.empty() && steps == 0) {
        order.push_back(t.name());
        column.dtype = t.tensor().dtype();
        column.step_shape.assign(t.tensor().shape().begin() + 1, t.tensor().shape().end());
      }
      column.data += t.tensor().data();
    }
    if (message.data_size() > 0) steps += message.data(0).tensor().shape(0);
  }
  absl::Status status = services::FromGrpcStatus(reader->Finish(),
                                                  absl::StrCat("GetEpisode from ", address));
  if (!status.ok()) {
    err << "error: " << status.message() << "\n";
    return 1;
  }
  auto it = columns.find(field);
  if (it == columns.end() || it->second.dtype != v1::DTYPE_UINT8 ||
      it->second.step_shape.size() != 3 ||
      (it->second.step_shape[2] != 3 && it->second.step_shape[2] != 1)) {
    err << "error: episode " << episode_id << " has no uint8 [H,W,3] or [H,W,1] field \"" << field
        << "\" (fields: " << absl::StrJoin(order, ", ") << ")\n";
    return 1;
  }
  Frames frames;
  frames.height = static_cast<int>(it->second.step_shape[0]);
  frames.width = static_cast<int>(it->second.step_shape[1]);
  frames.channels = static_cast<int>(it->second.step_shape[2]);
  frames.data.assign(it->second.data.begin(), it->second.data.end());
  absl::StatusOr<std::string> image =
      gif ? EncodeGif(frames, std::max(1, 100 / std::max(1, fps))) : EncodePngGrid(frames, per_row);
  if (!image.ok()) {
    err << "error: " << image.status().message() << "\n";
    return 1;
  }
  std::ofstream(path, std::ios::binary) << *image;
  const std::string json_path = path.substr(0, path.size() - 4) + ".json";
  std::vector<std::string> fields;
  for (const std::string& name : order) {
    if (name == field) continue;
    const Column& c = columns[name];
    fields.push_back(absl::StrCat("\"", name, "\":", FieldJson(c.dtype, c.step_shape, c.data, steps)));
  }
  std::ofstream(json_path) << "{\"episode\":" << Json(info) << ",\"steps\":" << steps
                           << ",\"fields\":{" << absl::StrJoin(fields, ",") << "}}\n";
  out << "wrote " << path << " (" << frames.count() << " frames, " << Bytes(image->size())
      << ") and " << json_path << "\n";
  return 0;
}

}  // namespace

int RunReplayCommand(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  if (args.size() < 2 || args[1] == "--help" || args[1] == "-h" || args[1] == "help") {
    (args.size() < 2 ? err : out) << kUsage << "\n";
    return args.size() < 2 ? 2 : 0;
  }
  const std::string command = args[1];
  if (command != "info" && command != "episodes" && command != "export") {
    err << "unknown replay command \"" << command << "\"\n" << kUsage << "\n";
    return 2;
  }
  services::CommandLine command_line(absl::StrCat("dreamfleet replay ", command, " [flags]"),
                                     "Queries replay shards.");
  CommonFlags flags;
  command_line.AddString("address", &flags.address,
                         "Shard host:port; default: every shard of the config.");
  command_line.AddString("table", &flags.table, "Table name; default: the shard's table.");
  command_line.AddBool("json", &flags.json, "Print JSON for scripts.");
  command_line.AddDouble("timeout", &flags.timeout_s, "Seconds per RPC.");
  command_line.AddConfigFlags();
  std::string actor, min_return, max_return, page_token, out_path, field = "image";
  int64_t page_size = 50, episode = -1, fps = 15, per_row = 16;
  bool all = false;
  if (command == "episodes") {
    command_line.AddString("actor", &actor, "Only episodes of this actor id.");
    command_line.AddString("min-return", &min_return, "Only episodes with return >= this.");
    command_line.AddString("max-return", &max_return, "Only episodes with return <= this.");
    command_line.AddInt("page-size", &page_size, "Episodes per page.");
    command_line.AddString("page-token", &page_token, "Token printed with the previous page.");
    command_line.AddBool("all", &all, "Every page.");
  }
  if (command == "export") {
    command_line.AddInt("episode", &episode, "Episode id (from `dreamfleet replay episodes`).");
    command_line.AddString("out", &out_path, "Output file: .gif (animated) or .png (grid).");
    command_line.AddString("field", &field, "The image field.");
    command_line.AddInt("fps", &fps, "GIF frames per second.");
    command_line.AddInt("per-row", &per_row, "PNG frames per row.");
  }
  std::vector<std::string> storage(args.begin() + 1, args.end());
  std::vector<char*> argv;
  for (std::string& s : storage) argv.push_back(s.data());
  if (absl::Status s = command_line.Parse(static_cast<int>(argv.size()), argv.data(), 1);
      !s.ok()) {
    err << "error: " << s.message() << "\n";
    return 2;
  }
  if (command_line.help_requested()) {
    out << command_line.Help();
    return 0;
  }
  absl::StatusOr<std::vector<std::string>> addresses = Addresses(command_line, &flags);
  if (!addresses.ok()) {
    err << "error: " << addresses.status().message() << "\n";
    return 2;
  }
  if (command == "info") return Info(*addresses, flags, out, err);
  if (command == "episodes") {
    v1::ListEpisodesRequest request;
    request.set_actor_id(actor);
    request.set_page_size(static_cast<int32_t>(page_size));
    request.set_page_token(page_token);
    double value;
    if (!min_return.empty()) {
      if (!absl::SimpleAtod(min_return, &value)) {
        err << "error: --min-return \"" << min_return << "\" is not a number\n";
        return 2;
      }
      request.set_min_return(value);
    }
    if (!max_return.empty()) {
      if (!absl::SimpleAtod(max_return, &value)) {
        err << "error: --max-return \"" << max_return << "\" is not a number\n";
        return 2;
      }
      request.set_max_return(value);
    }
    return Episodes(*addresses, flags, request, all, out, err);
  }
  if (episode < 0 || out_path.empty()) {
    err << "error: export needs --episode ID and --out FILE.gif|FILE.png\n";
    return 2;
  }
  return Export(addresses->front(), flags, static_cast<uint64_t>(episode), out_path, field,
                static_cast<int>(fps), static_cast<int>(per_row), out, err);
}

int RunReplayCli(int argc, char** argv) {
  std::vector<std::string> args(argv, argv + argc);
  return RunReplayCommand(args, std::cout, std::cerr);
}

}  // namespace dreamfleet::replay
