// fpm-replica's side of the status handler (SetHandler fpm-replica-status):
// GET of the status document and the nonce-guarded POST actions, over
// libcurl, each bounded by the CLI's --timeout.
#pragma once

#include <map>
#include <stdexcept>
#include <string>

#include <nlohmann/json.hpp>

namespace fpmr::cli {

// The document as the handler wrote it (its keys in their order).
using Document = nlohmann::ordered_json;

// A failure the CLI reports as "fpm-replica: <what>" with exit code 1;
// `http_status` is the handler's answer when it gave one, else 0.
class Failure : public std::runtime_error {
public:
    explicit Failure(const std::string& what, long http_status = 0)
        : std::runtime_error(what), http_status_(http_status) {}
    long http_status() const { return http_status_; }

private:
    long http_status_;
};

class StatusClient {
public:
    // `host`: the Host header to send ("" for the URL's own), for a
    // name-based vhost that is not its address's default one.
    StatusClient(std::string url, std::string host, double timeout_seconds);

    Document get() const;
    // POST of the url-encoded `fields`, with the document's nonce.
    Document post(const std::map<std::string, std::string>& fields, const std::string& nonce) const;

    const std::string& url() const { return url_; }

private:
    Document request(const std::string* body, const std::string& nonce) const;

    std::string url_;
    std::string host_;
    double timeout_seconds_;
};

}  // namespace fpmr::cli
