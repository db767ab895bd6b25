// FastCGI ping request encoding and reply parsing (FastCGI 1.0 records).
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

}  // namespace

std::string fcgi_ping_request(const std::string& path) {
    std::string out;
    std::string begin(8, '\0');
    begin[1] = static_cast<char>(kResponder);  // role, flags 0: close after
    append_record(out, kBeginRequest, begin);
    const std::vector<std::pair<std::string, std::string>> params = {
        {"GATEWAY_INTERFACE", "CGI/1.1"}, {"REQUEST_METHOD", "GET"},
        {"SCRIPT_NAME", path},            {"SCRIPT_FILENAME", path},
        {"REQUEST_URI", path},            {"QUERY_STRING", ""},
        {"SERVER_PROTOCOL", "HTTP/1.1"},  {"SERVER_SOFTWARE", "mod_fpm_replica"},
        {"REMOTE_ADDR", "127.0.0.1"},
    };
    std::string encoded;
    for (const auto& [name, value] : params) {
        append_length(encoded, name.size());
        append_length(encoded, value.size());
        encoded += name;
        encoded += value;
    }
    append_record(out, kParams, encoded);
    append_record(out, kParams, "");
    append_record(out, kStdin, "");
    return out;
}

FcgiReply parse_fcgi_reply(const std::string& bytes) {
    FcgiReply reply;
    size_t pos = 0;
    while (pos + 8 <= bytes.size()) {
        auto byte = [&](size_t i) { return static_cast<unsigned char>(bytes[pos + i]); };
        if (byte(0) != kVersion) {
            reply.status = FcgiReply::Status::Malformed;
            return reply;
        }
        unsigned char type = byte(1);
        size_t length = (static_cast<size_t>(byte(4)) << 8) | byte(5);
        size_t padding = byte(6);
        if (pos + 8 + length + padding > bytes.size()) break;  // record not complete yet
        std::string content = bytes.substr(pos + 8, length);
        pos += 8 + length + padding;
        if (type == kStdout) {
            reply.output += content;
        } else if (type == kEndRequest) {
            reply.status = FcgiReply::Status::Complete;
            break;
        } else if (type != kStderr) {
            reply.status = FcgiReply::Status::Malformed;
            return reply;
        }
    }
    reply.http_status = 200;
    size_t end = reply.output.find("\r\n\r\n");
    if (end == std::string::npos) end = reply.output.find("\n\n");
    std::string headers = reply.output.substr(0, end == std::string::npos ? reply.output.size() : end);
    for (size_t at = 0; at < headers.size();) {
        size_t eol = headers.find('\n', at);
        std::string line = headers.substr(at, eol == std::string::npos ? std::string::npos : eol - at);
        if (line.size() >= 7 && (line.compare(0, 7, "Status:") == 0 || line.compare(0, 7, "status:") == 0)) {
            reply.http_status = status_code_of(line.substr(7));
        }
        if (eol == std::string::npos) break;
        at = eol + 1;
    }
    return reply;
}

}  // namespace fpmr
