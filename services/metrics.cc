#include "services/metrics.h"

#include <arpa/inet.h>
#include <dlfcn.h>
#include <pthread.h>
#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "civetweb.h"
#include "prometheus/text_serializer.h"

// civetweb creates its threads with 100 KiB stacks. In processes that load LibTorch the static TLS
// alone is larger than that, so glibc refuses to create them ("Cannot create first worker
// thread"). This definition, linked into every binary that serves metrics, takes precedence over
// glibc's and raises such requests to 1 MiB; larger requests pass through unchanged.
extern "C" int pthread_attr_setstacksize(pthread_attr_t* attr, size_t size) {
  using Function = int (*)(pthread_attr_t*, size_t);
  static const Function real =
      reinterpret_cast<Function>(dlsym(RTLD_NEXT, "pthread_attr_setstacksize"));
  constexpr size_t kMinimumStack = 1 << 20;
  return real(attr, size < kMinimumStack ? kMinimumStack : size);
}

namespace dreamfleet::services {

Metrics::Metrics() : registry_(std::make_shared<prometheus::Registry>()) {}

prometheus::Counter& Metrics::Counter(const std::string& name, const std::string& help,
                                      const Labels& labels) {
  absl::MutexLock lock(&mu_);
  auto& family = counters_[name];
  if (family == nullptr) {
    family = &prometheus::BuildCounter().Name(name).Help(help).Register(*registry_);
  }
  return family->Add(labels);
}

prometheus::Gauge& Metrics::Gauge(const std::string& name, const std::string& help,
                                  const Labels& labels) {
  absl::MutexLock lock(&mu_);
  auto& family = gauges_[name];
  if (family == nullptr) {
    family = &prometheus::BuildGauge().Name(name).Help(help).Register(*registry_);
  }
  return family->Add(labels);
}

prometheus::Histogram& Metrics::Histogram(const std::string& name, const std::string& help,
                                          const std::vector<double>& buckets,
                                          const Labels& labels) {
  absl::MutexLock lock(&mu_);
  auto& family = histograms_[name];
  if (family == nullptr) {
    family = &prometheus::BuildHistogram().Name(name).Help(help).Register(*registry_);
  }
  return family->Add(labels, buckets);
}

std::vector<double> Metrics::LatencyBuckets() {
  return {5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2,
          5e-2, 0.1,  0.25,   0.5,  1,    2.5,    5,    10,   30};
}

std::string Metrics::TextExposition() const {
  std::ostringstream out;
  prometheus::TextSerializer().Serialize(out, registry_->Collect());
  return out.str();
}

namespace {

void Reply(mg_connection* conn, int code, const char* reason, const char* content_type,
           const std::string& body) {
  mg_printf(conn,
            "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
            "Connection: close\r\n\r\n",
            code, reason, content_type, body.size());
  mg_write(conn, body.data(), body.size());
}

int HandleMetrics(mg_connection* conn, void* data) {
  auto* server = static_cast<MetricsServer*>(data);
  Reply(conn, 200, "OK", "text/plain; version=0.0.4; charset=utf-8", server->Metrics());
  return 200;
}

int HandleHealth(mg_connection* conn, void* data) {
  auto* server = static_cast<MetricsServer*>(data);
  absl::Status health = server->Health();
  if (health.ok()) {
    Reply(conn, 200, "OK", "text/plain", "ok\n");
    return 200;
  }
  Reply(conn, 503, "Service Unavailable", "text/plain", std::string(health.message()) + "\n");
  return 503;
}

}  // namespace

absl::StatusOr<std::unique_ptr<MetricsServer>> MetricsServer::Start(const std::string& host,
                                                                   int port,
                                                                   const services::Metrics* metrics) {
  static const bool initialized = [] {
    mg_init_library(0);
    return true;
  }();
  (void)initialized;
  std::unique_ptr<MetricsServer> server(new MetricsServer);
  server->metrics_ = metrics;
  const std::string listen = absl::StrCat(host.empty() ? "0.0.0.0" : host, ":", port);
  const char* options[] = {"listening_ports", listen.c_str(), "num_threads", "2", nullptr};
  mg_init_data init = {};
  init.configuration_options = options;
  mg_callbacks callbacks = {};
  callbacks.log_message = [](const mg_connection*, const char*) { return 1; };  // quiet
  init.callbacks = &callbacks;
  char error_text[256] = "";
  unsigned error_code = 0;
  mg_error_data error = {};
  error.code = &error_code;
  error.text = error_text;
  error.text_buffer_size = sizeof(error_text);
  server->context_ = mg_start2(&init, &error);
  if (server->context_ == nullptr) {
    return absl::UnavailableError(absl::StrCat("cannot serve metrics on ", listen, ": ",
                                               error_text[0] ? error_text : "civetweb failed"));
  }
  mg_set_request_handler(server->context_, "/metrics$", HandleMetrics, server.get());
  mg_set_request_handler(server->context_, "/healthz$", HandleHealth, server.get());
  mg_server_port ports[4];
  const int count = mg_get_server_ports(server->context_, 4, ports);
  if (count <= 0) return absl::InternalError("metrics server has no listening port");
  server->port_ = ports[0].port;
  return server;
}

MetricsServer::~MetricsServer() {
  if (context_ != nullptr) mg_stop(context_);
}

void MetricsServer::SetHealthCheck(std::function<absl::Status()> check) {
  absl::MutexLock lock(&mu_);
  health_check_ = std::move(check);
}

std::string MetricsServer::Metrics() const {
  return metrics_ == nullptr ? std::string() : metrics_->TextExposition();
}

absl::Status MetricsServer::Health() const {
  std::function<absl::Status()> check;
  {
    absl::MutexLock lock(&mu_);
    check = health_check_;
  }
  return check ? check() : absl::OkStatus();
}

absl::StatusOr<std::string> HttpGet(const std::string& host, int port, const std::string& path,
                                    int* status_code) {
  addrinfo hints = {};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* result = nullptr;
  const std::string port_text = absl::StrCat(port);
  if (getaddrinfo(host.c_str(), port_text.c_str(), &hints, &result) != 0 || result == nullptr) {
    return absl::UnavailableError(absl::StrCat("cannot resolve ", host));
  }
  int fd = socket(result->ai_family, result->ai_socktype, result->ai_protocol);
  if (fd < 0 || connect(fd, result->ai_addr, result->ai_addrlen) != 0) {
    freeaddrinfo(result);
    if (fd >= 0) close(fd);
    return absl::UnavailableError(absl::StrCat("cannot connect to ", host, ":", port));
  }
  freeaddrinfo(result);
  timeval timeout = {10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  const std::string request =
      absl::StrCat("GET ", path, " HTTP/1.0\r\nHost: ", host, "\r\n\r\n");
  if (send(fd, request.data(), request.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(request.size())) {
    close(fd);
    return absl::UnavailableError("send failed");
  }
  std::string response;
  char buffer[16384];
  ssize_t n;
  while ((n = recv(fd, buffer, sizeof(buffer), 0)) > 0) response.append(buffer, n);
  close(fd);
  const size_t header_end = response.find("\r\n\r\n");
  if (header_end == std::string::npos) {
    return absl::DataLossError(absl::StrCat("malformed HTTP response from ", host, ":", port));
  }
  std::vector<std::string> status_line =
      absl::StrSplit(response.substr(0, response.find("\r\n")), ' ');
  int code = 0;
  if (status_line.size() < 2 || !absl::SimpleAtoi(status_line[1], &code)) {
    return absl::DataLossError("malformed HTTP status line");
  }
  if (status_code != nullptr) *status_code = code;
  std::string body = response.substr(header_end + 4);
  if (code != 200) {
    return absl::UnavailableError(absl::StrCat("GET ", path, " returned ", code, ": ", body));
  }
  return body;
}

}  // namespace dreamfleet::services
