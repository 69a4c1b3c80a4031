// Prometheus metrics for every process. Components register counters, gauges and histograms with
// labels in one line through Metrics; MetricsServer serves them as text at /metrics and the
// process health at /healthz on one port (civetweb).
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"

struct mg_context;  // civetweb

namespace dreamfleet::services {

using Labels = std::map<std::string, std::string>;

class Metrics {
 public:
  Metrics();
  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;

  // Returns the metric `name{labels}`, creating its family on first use. The same name must
  // always be used with the same kind and help text. Thread-safe; the reference stays valid for
  // the lifetime of this object.
  prometheus::Counter& Counter(const std::string& name, const std::string& help,
                               const Labels& labels = {});
  prometheus::Gauge& Gauge(const std::string& name, const std::string& help,
                           const Labels& labels = {});
  prometheus::Histogram& Histogram(const std::string& name, const std::string& help,
                                   const std::vector<double>& buckets, const Labels& labels = {});

  // Buckets for latencies in seconds, 50 us to 30 s.
  static std::vector<double> LatencyBuckets();

  // The Prometheus text exposition format of every registered metric.
  std::string TextExposition() const;
  std::shared_ptr<prometheus::Registry> registry() const { return registry_; }

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  absl::Mutex mu_;
  std::map<std::string, prometheus::Family<prometheus::Counter>*> counters_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, prometheus::Family<prometheus::Gauge>*> gauges_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, prometheus::Family<prometheus::Histogram>*> histograms_
      ABSL_GUARDED_BY(mu_);
};

class MetricsServer {
 public:
  // Serves `metrics` at http://host:port/metrics and health at /healthz. Port 0 picks a free port.
  static absl::StatusOr<std::unique_ptr<MetricsServer>> Start(const std::string& host, int port,
                                                             const Metrics* metrics);
  ~MetricsServer();
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  int port() const { return port_; }
  // /healthz answers 200 "ok" while `check` returns OK, else 503 with the status message.
  void SetHealthCheck(std::function<absl::Status()> check);

  // Internal: request dispatch from civetweb's C callbacks.
  std::string Metrics() const;
  absl::Status Health() const;

 private:
  MetricsServer() = default;
  ::mg_context* context_ = nullptr;
  int port_ = 0;
  const services::Metrics* metrics_ = nullptr;
  mutable absl::Mutex mu_;
  std::function<absl::Status()> health_check_ ABSL_GUARDED_BY(mu_);
};

// Fetches http://host:port/path with a plain HTTP/1.0 GET (for tests and the CLI). Returns the
// body; an error when the connection fails or the status is not 200.
absl::StatusOr<std::string> HttpGet(const std::string& host, int port, const std::string& path,
                                    int* status_code = nullptr);

}  // namespace dreamfleet::services
