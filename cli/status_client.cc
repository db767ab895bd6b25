#include "status_client.h"

#include <curl/curl.h>

#include <memory>

namespace fpmr::cli {

namespace {

size_t append_body(char* data, size_t size, size_t count, void* out) {
    static_cast<std::string*>(out)->append(data, size * count);
    return size * count;
}

// The status line's reason phrase ("Not Found"), for a message when the
// handler gave no JSON error.
size_t keep_reason(char* data, size_t size, size_t count, void* out) {
    std::string line(data, size * count);
    auto* reason = static_cast<std::string*>(out);
    if (line.rfind("HTTP/", 0) == 0) {
        size_t first = line.find(' ');
        size_t second = first == std::string::npos ? first : line.find(' ', first + 1);
        *reason = second == std::string::npos ? "" : line.substr(second + 1);
        while (!reason->empty() && (reason->back() == '\r' || reason->back() == '\n')) reason->pop_back();
    }
    return size * count;
}

std::string form_encode(CURL* curl, const std::map<std::string, std::string>& fields) {
    std::string body;
    for (const auto& [name, value] : fields) {
        char* n = curl_easy_escape(curl, name.c_str(), static_cast<int>(name.size()));
        char* v = curl_easy_escape(curl, value.c_str(), static_cast<int>(value.size()));
        if (!body.empty()) body += '&';
        body += std::string(n ? n : "") + "=" + (v ? v : "");
        curl_free(n);
        curl_free(v);
    }
    return body;
}

}  // namespace

StatusClient::StatusClient(std::string url, std::string host, double timeout_seconds)
    : url_(std::move(url)), host_(std::move(host)), timeout_seconds_(timeout_seconds) {}

Document StatusClient::get() const { return request(nullptr, ""); }

Document StatusClient::post(const std::map<std::string, std::string>& fields, const std::string& nonce) const {
    std::unique_ptr<CURL, decltype(&curl_easy_cleanup)> curl(curl_easy_init(), curl_easy_cleanup);
    std::string body = form_encode(curl.get(), fields);
    return request(&body, nonce);
}

Document StatusClient::request(const std::string* body, const std::string& nonce) const {
    std::unique_ptr<CURL, decltype(&curl_easy_cleanup)> curl(curl_easy_init(), curl_easy_cleanup);
    if (!curl) throw Failure("cannot reach the status handler at " + url_ + ": libcurl did not start");
    std::unique_ptr<curl_slist, decltype(&curl_slist_free_all)> headers(nullptr, curl_slist_free_all);
    auto add_header = [&](const std::string& h) { headers.reset(curl_slist_append(headers.release(), h.c_str())); };
    if (!host_.empty()) add_header("Host: " + host_);
    if (body) {
        add_header("Content-Type: application/x-www-form-urlencoded");
        add_header("X-Fpm-Replica-Nonce: " + nonce);
    }
    std::string answer, reason;
    char error[CURL_ERROR_SIZE] = "";
    CURL* c = curl.get();
    curl_easy_setopt(c, CURLOPT_URL, url_.c_str());
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, static_cast<long>(timeout_seconds_ * 1000));
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers.get());
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, append_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &answer);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, keep_reason);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &reason);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, error);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    if (body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body->c_str());
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, static_cast<long>(body->size()));
    }
    CURLcode rc = curl_easy_perform(c);
    if (rc != CURLE_OK) {
        throw Failure("cannot reach the status handler at " + url_ + ": " +
                      (error[0] ? error : curl_easy_strerror(rc)));
    }
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    Document doc = Document::parse(answer, nullptr, false);
    if (status >= 400) {
        std::string why = doc.is_object() && doc.contains("error") && doc["error"].is_string()
                              ? doc["error"].get<std::string>()
                              : "";
        if (why.empty()) why = reason;
        if (status == 403 && body) {
            throw Failure("the status handler refused the request (403): " + (why.empty() ? "nonce refused" : why),
                          status);
        }
        if (status == 404) {
            // Name-based vhosts: the address's default site answered, not the one meant.
            throw Failure(url_ + " answered 404: " + why + "; is that the site you mean? Name it with --host "
                          "<its ServerName> (or FPM_REPLICA_HOST), or give its status URL with --url", status);
        }
        throw Failure(url_ + " answered " + std::to_string(status) + ": " + why, status);
    }
    if (!doc.is_object() || (!body && !doc.contains("replicas"))) {
        throw Failure(url_ + " did not answer a status document (is it SetHandler fpm-replica-status?)");
    }
    return doc;
}

}  // namespace fpmr::cli
