// A replica's answers to the warm-up script's requests, as the supervisor
// reads them: the list of cached scripts (then mapped to another release)
// and the compile summary. The input's parts ("\n%%\n" between them): the
// list body, the old release, the new release, the stable path.
#include <set>
#include <string>

#include "fuzz_input.h"
#include "warmup.h"
#include "warmup_urls.h"

using namespace fpmr;
using fpmr::fuzz::violated;

namespace {

bool plain_absolute(const std::string& path) {
    if (path.empty() || path[0] != '/' || path.size() > kMaxScriptPathLength ||
        path.find('\0') != std::string::npos) {
        return false;
    }
    const std::string slashed = path + "/";
    return slashed.find("/../") == std::string::npos && slashed.find("/./") == std::string::npos;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string text(fpmr::fuzz::as_text(data, size));
    const std::vector<std::string> parts = fpmr::fuzz::split_parts(text, 4);
    const ScriptList list = parse_script_list(parts[0]);
    if (list.scripts.size() > kMaxWarmupScripts) violated("more scripts than a working set holds");
    for (const std::string& script : list.scripts) {
        if (!plain_absolute(script)) violated("parse_script_list kept a path that is not plain and absolute");
        if (script.find('\n') != std::string::npos) violated("a script path holds a line break");
    }
    std::string under = parts[3].empty() ? parts[2] : parts[3];
    while (!under.empty() && under.back() == '/') under.pop_back();
    const std::vector<std::string> dropped =
        map_working_set(list.scripts, parts[1], parts[2], parts[3], SharedScripts::kDrop);
    const std::vector<std::string> mapped =
        map_working_set(list.scripts, parts[1], parts[2], parts[3], SharedScripts::kKeep);
    if (mapped.size() > list.scripts.size()) violated("the mapping made up scripts");
    if (dropped.size() > mapped.size()) violated("keeping shared scripts lost mapped ones");
    const std::set<std::string> listed(list.scripts.begin(), list.scripts.end());
    for (const std::string& script : mapped) {
        if (!plain_absolute(script)) violated("map_working_set made a path that is not plain and absolute");
        const bool in_release = script.compare(0, under.size() + 1, under + "/") == 0;
        // Outside the new release only a listed script, unchanged (a shared one).
        if (!in_release && listed.count(script) == 0) {
            violated("map_working_set made a path outside the new release (or the stable path)");
        }
    }
    for (const std::string& script : dropped) {
        if (script.compare(0, under.size() + 1, under + "/") != 0) {
            violated("map_working_set kept a shared script it was to drop");
        }
    }
    size_t included = 0;
    const FcgiRequest compile = warmup_compile_request("/w.php", mapped, 1000, &included);
    if (compile.body.size() > kMaxCompileBodyBytes || included > mapped.size()) {
        violated("a compile request beyond its bounds");
    }
    // The steering header a client may forge, and the status line of an
    // answer through httpd: a header that parses formats back to itself.
    if (auto header = parse_warmup_header(parts[0], 1 << 20)) {
        if (header->slot < 0 || header->token.empty()) violated("a warm-up header with no slot or token");
        if (warmup_header_value(header->slot, header->token) != parts[0]) {
            violated("a warm-up header that does not format back to itself");
        }
    }
    const int status = parse_http_status(text);
    if (status != 0 && (status < 100 || status > 599)) violated("an HTTP status out of range");
    if (auto result = parse_compile_answer(text)) {
        if (result->compiled < 0 || result->skipped < 0 || result->errors < 0 || result->elapsed_ms < 0) {
            violated("a negative count in a compile answer");
        }
    }
    return 0;
}
