#include "warmup.h"

#include <charconv>
#include <set>

namespace fpmr {

namespace {

// Absolute, no NUL or line break (a compile request is one path a line),
// no "." or ".." component.
bool acceptable_path(std::string_view path) {
    if (path.empty() || path[0] != '/' || path.size() > kMaxScriptPathLength) return false;
    if (path.find_first_of(std::string_view("\0\r\n", 3)) != std::string_view::npos) return false;
    for (size_t at = 1; at <= path.size();) {
        size_t slash = path.find('/', at);
        if (slash == std::string_view::npos) slash = path.size();
        std::string_view component = path.substr(at, slash - at);
        if (component == "." || component == "..") return false;
        at = slash + 1;
    }
    return true;
}

// "/srv/app/" and "/srv/app" are the same directory; "" and "/" are none
// (a working set is never mapped from or to the root).
std::string directory_of(const std::string& dir) {
    std::string d = dir;
    while (!d.empty() && d.back() == '/') d.pop_back();
    return d;
}

bool under(const std::string& path, const std::string& dir) {
    return path.size() > dir.size() + 1 && path.compare(0, dir.size(), dir) == 0 &&
           path[dir.size()] == '/';
}

bool parse_count(std::string_view text, int64_t* out) {
    if (text.empty() || text.size() > 12) return false;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), *out);
    return ec == std::errc() && end == text.data() + text.size() && *out >= 0;
}

// The directory a release directory lies in ("/srv/app/releases" for
// "/srv/app/releases/r1"), or "" when that is the root.
std::string releases_directory_of(const std::string& release) {
    std::string d = directory_of(release);
    size_t slash = d.rfind('/');
    return slash == std::string::npos || slash == 0 ? std::string() : d.substr(0, slash);
}

}  // namespace

ScriptList parse_script_list(std::string_view body) {
    ScriptList list;
    for (size_t at = 0; at < body.size();) {
        size_t eol = body.find('\n', at);
        if (eol == std::string_view::npos) eol = body.size();
        std::string_view line = body.substr(at, eol - at);
        at = eol + 1;
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        if (line.empty()) continue;
        if (!acceptable_path(line)) {
            ++list.rejected;
            continue;
        }
        if (list.scripts.size() == kMaxWarmupScripts) {
            list.truncated = true;
            break;
        }
        list.scripts.emplace_back(line);
    }
    return list;
}

std::vector<std::string> map_working_set(const std::vector<std::string>& scripts,
                                         const std::string& from_release,
                                         const std::string& to_release,
                                         const std::string& stable_path,
                                         SharedScripts shared) {
    std::vector<std::string> mapped;
    std::set<std::string> seen;
    const bool namespace_mode = !stable_path.empty();
    const std::string from = directory_of(namespace_mode ? stable_path : from_release);
    const std::string to = directory_of(namespace_mode ? stable_path : to_release);
    if (from.empty() || to.empty() || !acceptable_path(from) || !acceptable_path(to)) return mapped;
    std::vector<std::string> other_releases;
    for (const std::string* release : {&from_release, &to_release}) {
        std::string dir = releases_directory_of(*release);
        if (!dir.empty()) other_releases.push_back(dir);
    }
    auto add = [&](std::string target) {
        if (target.size() <= kMaxScriptPathLength && seen.insert(target).second) {
            mapped.push_back(std::move(target));
        }
    };
    for (const std::string& script : scripts) {
        if (mapped.size() == kMaxWarmupScripts) break;
        if (!acceptable_path(script)) continue;
        if (under(script, from)) {
            add(to + script.substr(from.size()));
            continue;
        }
        if (shared == SharedScripts::kDrop) continue;
        bool another_release = false;
        for (const std::string& dir : other_releases) another_release |= under(script, dir);
        if (!another_release) add(script);
    }
    return mapped;
}

FcgiRequest warmup_list_request(const std::string& script_path) {
    FcgiRequest request;
    request.path = script_path;
    request.query = "action=list";
    return request;
}

FcgiRequest warmup_compile_request(const std::string& script_path,
                                   const std::vector<std::string>& scripts, int64_t deadline_ms,
                                   size_t* included) {
    FcgiRequest request;
    request.method = "POST";
    request.path = script_path;
    request.query = "action=compile&deadline_ms=" + std::to_string(deadline_ms < 1 ? 1 : deadline_ms);
    request.content_type = "text/plain";
    size_t count = 0;
    for (const std::string& script : scripts) {
        if (request.body.size() + script.size() + 1 > kMaxCompileBodyBytes) break;
        request.body += script;
        request.body += '\n';
        ++count;
    }
    if (included) *included = count;
    return request;
}

std::optional<CompileResult> parse_compile_answer(std::string_view body) {
    size_t eol = body.find('\n');
    std::string_view line = body.substr(0, eol);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    std::vector<std::string_view> words;
    for (size_t at = 0; at < line.size();) {
        size_t space = line.find(' ', at);
        if (space == std::string_view::npos) space = line.size();
        if (space > at) words.push_back(line.substr(at, space - at));
        at = space + 1;
    }
    if (words.size() % 2 != 0) return std::nullopt;
    CompileResult result;
    bool compiled = false, skipped = false;
    for (size_t i = 0; i < words.size(); i += 2) {
        int64_t value;
        if (!parse_count(words[i + 1], &value)) return std::nullopt;
        std::string_view key = words[i];
        if (key == "compiled") {
            result.compiled = value;
            compiled = true;
        } else if (key == "skipped") {
            result.skipped = value;
            skipped = true;
        } else if (key == "errors") {
            result.errors = value;
        } else if (key == "uncached") {
            result.uncached = value;
        } else if (key == "warnings") {
            result.warnings = value;
        } else if (key == "elapsed_ms") {
            result.elapsed_ms = value;
        } else if (key == "timed_out") {
            if (value > 1) return std::nullopt;
            result.timed_out = value == 1;
        }
    }
    if (!compiled || !skipped) return std::nullopt;
    return result;
}

}  // namespace fpmr
