// FastCGI request encoding and reply parsing (FastCGI 1.0 records).
#include "fcgi_ping.h"

#include <utility>
#include <vector>

namespace fpmr {

namespace {

constexpr unsigned char kVersion = 1;
constexpr unsigned char kBeginRequest = 1;
constexpr unsigned char kEndRequest = 3;
constexpr unsigned char kParams = 4;
constexpr unsigned char kStdin = 5;
constexpr unsigned char kStdout = 6;
constexpr unsigned char kStderr = 7;
constexpr unsigned char kResponder = 1;
constexpr int kRequestId = 1;

void append_record(std::string& out, unsigned char type, const std::string& content) {
    size_t padding = (8 - content.size() % 8) % 8;
    out += static_cast<char>(kVersion);
    out += static_cast<char>(type);
    out += static_cast<char>(kRequestId >> 8);
    out += static_cast<char>(kRequestId & 0xff);
    out += static_cast<char>((content.size() >> 8) & 0xff);
    out += static_cast<char>(content.size() & 0xff);
    out += static_cast<char>(padding);
    out += '\0';
    out += content;
    out.append(padding, '\0');
}

void append_length(std::string& out, size_t n) {
    if (n < 128) {
        out += static_cast<char>(n);
    } else {
        out += static_cast<char>(((n >> 24) & 0x7f) | 0x80);
        out += static_cast<char>((n >> 16) & 0xff);
        out += static_cast<char>((n >> 8) & 0xff);
        out += static_cast<char>(n & 0xff);
    }
}

// The code of a "Status:" header's value ("404 Not Found"): three digits,
// 100 to 999, alone or followed by a blank; 0 for anything else, which no
// check counts as a pass. Parsed by hand: atoi would wrap a long number from
// a broken replica ("4294967496" became 200).
int status_code_of(const std::string& value) {
    size_t at = value.find_first_not_of(" \t");
    if (at == std::string::npos || value.size() - at < 3) return 0;
    int code = 0;
    for (size_t i = at; i < at + 3; ++i) {
        if (value[i] < '0' || value[i] > '9') return 0;
        code = code * 10 + (value[i] - '0');
    }
    if (value.size() > at + 3 && value.find_first_of(" \t\r", at + 3) != at + 3) return 0;
    return code >= 100 ? code : 0;
}

// The most content one record carries: its length is 16 bits. Longer
// PARAMS and STDIN streams are split into records of this size (a multiple
// of 8, so those need no padding).
constexpr size_t kMaxRecordContent = 65528;

void append_stream(std::string& out, unsigned char type, const std::string& content) {
    for (size_t at = 0; at < content.size(); at += kMaxRecordContent) {
        append_record(out, type, content.substr(at, kMaxRecordContent));
    }
    append_record(out, type, "");  // the empty record that ends the stream
}

// Where the CGI headers of `output` end, and how long the blank line is.
std::pair<size_t, size_t> header_end(const std::string& output) {
    size_t end = output.find("\r\n\r\n");
    if (end != std::string::npos) return {end, 4};
    end = output.find("\n\n");
    if (end != std::string::npos) return {end, 2};
    return {std::string::npos, 0};
}

}  // namespace

std::string fcgi_request(const FcgiRequest& request) {
    std::string out;
    std::string begin(8, '\0');
    begin[1] = static_cast<char>(kResponder);  // role, flags 0: close after
    append_record(out, kBeginRequest, begin);
    const std::string& path = request.path;
    std::vector<std::pair<std::string, std::string>> params = {
        {"GATEWAY_INTERFACE", "CGI/1.1"},
        {"REQUEST_METHOD", request.method},
        {"SCRIPT_NAME", path},
        {"SCRIPT_FILENAME", path},
        {"REQUEST_URI", request.query.empty() ? path : path + "?" + request.query},
        {"QUERY_STRING", request.query},
        {"SERVER_PROTOCOL", "HTTP/1.1"},
        {"SERVER_SOFTWARE", "mod_fpm_replica"},
        {"REMOTE_ADDR", "127.0.0.1"},
    };
    // A ping sends neither: its bytes stay what they always were.
    if (!request.body.empty() || (request.method != "GET" && request.method != "HEAD")) {
        params.emplace_back("CONTENT_LENGTH", std::to_string(request.body.size()));
        params.emplace_back("CONTENT_TYPE", request.content_type);
    }
    std::string encoded;
    for (const auto& [name, value] : params) {
        append_length(encoded, name.size());
        append_length(encoded, value.size());
        encoded += name;
        encoded += value;
    }
    append_stream(out, kParams, encoded);
    append_stream(out, kStdin, request.body);
    return out;
}

std::string fcgi_ping_request(const std::string& path) {
    FcgiRequest request;
    request.path = path;
    return fcgi_request(request);
}

FcgiReply::Status FcgiReplyReader::feed(std::string_view bytes) {
    if (status_ != FcgiReply::Status::Incomplete) return status_;
    pending_.append(bytes.data(), bytes.size());
    size_t pos = 0;
    while (pos + 8 <= pending_.size()) {
        auto byte = [&](size_t i) { return static_cast<unsigned char>(pending_[pos + i]); };
        if (byte(0) != kVersion) {
            status_ = FcgiReply::Status::Malformed;
            break;
        }
        unsigned char type = byte(1);
        size_t length = (static_cast<size_t>(byte(4)) << 8) | byte(5);
        size_t padding = byte(6);
        if (pos + 8 + length + padding > pending_.size()) break;  // record not complete yet
        if (type == kStdout) {
            output_.append(pending_, pos + 8, length);
        } else if (type == kEndRequest) {
            status_ = FcgiReply::Status::Complete;
            break;
        } else if (type != kStderr) {
            status_ = FcgiReply::Status::Malformed;
            break;
        }
        pos += 8 + length + padding;
    }
    if (status_ == FcgiReply::Status::Incomplete) {
        pending_.erase(0, pos);
    } else {
        pending_.clear();
        pending_.shrink_to_fit();
    }
    return status_;
}

int fcgi_output_status(const std::string& output) {
    int status = 200;
    size_t end = header_end(output).first;
    std::string headers = output.substr(0, end);
    for (size_t at = 0; at < headers.size();) {
        size_t eol = headers.find('\n', at);
        std::string line = headers.substr(at, eol == std::string::npos ? std::string::npos : eol - at);
        if (line.size() >= 7 && (line.compare(0, 7, "Status:") == 0 || line.compare(0, 7, "status:") == 0)) {
            status = status_code_of(line.substr(7));
        }
        if (eol == std::string::npos) break;
        at = eol + 1;
    }
    return status;
}

std::string_view fcgi_output_body(const std::string& output) {
    auto [end, blank] = header_end(output);
    if (end == std::string::npos) return {};
    return std::string_view(output).substr(end + blank);
}

FcgiReply parse_fcgi_reply(const std::string& bytes) {
    FcgiReplyReader reader;
    FcgiReply reply;
    reply.status = reader.feed(bytes);
    reply.output = reader.take_output();
    // A malformed answer has no status (it is no answer).
    if (reply.status != FcgiReply::Status::Malformed) reply.http_status = fcgi_output_status(reply.output);
    return reply;
}

}  // namespace fpmr
