// Warm-up before ready: what the supervisor asks of the warm-up script
// (share/warmup.php, run by a replica's php-fpm over FastCGI) and how it
// reads the answers. A master's working set is opcache's list of the
// scripts it has cached (the `list` action); mapped to a new master's
// release (map_working_set), the new master compiles it without running
// it (the `compile` action) before it takes traffic. No sockets here: the
// requests go out through FcgiPingClient.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "fcgi_ping.h"

namespace fpmr {

// Bounds of a working set: opcache's default max_accelerated_files is
// 10000 (and large applications raise it to about 20000), and PATH_MAX.
constexpr size_t kMaxWarmupScripts = 20000;
constexpr size_t kMaxScriptPathLength = 4096;
// A compile request's body stays under PHP's default post_max_size (8M).
constexpr size_t kMaxCompileBodyBytes = 4 * 1024 * 1024;

struct ScriptList {
    std::vector<std::string> scripts;  // in the order of the answer
    size_t rejected = 0;               // lines that are no acceptable path
    bool truncated = false;            // more than kMaxWarmupScripts: the rest was dropped
};

// The body of a `list` answer: one path per line ("\n", a "\r" before it is
// dropped, empty lines are ignored). A line counts as rejected when it is
// longer than kMaxScriptPathLength, holds a NUL, is not absolute or has a
// "." or ".." component: a replica's answer is not trusted to name paths
// the supervisor would not name itself.
ScriptList parse_script_list(std::string_view body);

// What becomes of a cached script outside the release (or the stable path)
// when a working set is mapped.
enum class SharedScripts {
    // Kept as it is: a new master's cache is empty, and a library outside
    // the release (Debian's /usr/share/php, a template cache) is as much
    // part of the working set as the release's own files.
    kKeep,
    // Dropped: the same master compiles another release, and has the
    // shared scripts cached already.
    kDrop,
};

// The working set of an old master as a new master sees it, in order,
// without duplicates.
// - Realpath mode (`stable_path` empty): a script under `from_release` (the
//   old master's release directory, a real path) becomes the same relative
//   path under `to_release`. The same release on both sides (a restart)
//   keeps the paths.
// - Namespace mode (`stable_path` set): every master sees its own release
//   under the stable path, so scripts under it are kept as they are.
// Any other script is another release's when it lies in the directory that
// holds `from_release` or `to_release` (dropped: pinned requests of an old
// release warm nothing), else shared, which `shared` decides.
std::vector<std::string> map_working_set(const std::vector<std::string>& scripts,
                                         const std::string& from_release,
                                         const std::string& to_release,
                                         const std::string& stable_path,
                                         SharedScripts shared);

// The `list` request: GET `script_path`?action=list.
FcgiRequest warmup_list_request(const std::string& script_path);

// The `compile` request: POST `script_path`?action=compile&deadline_ms=N
// whose body is one path per line. `deadline_ms` (at least 1) bounds the
// script's own work; the caller's FcgiPingClient deadline should leave it
// some more. Scripts beyond kMaxCompileBodyBytes of body are left out;
// `*included` (when given) says how many went in.
FcgiRequest warmup_compile_request(const std::string& script_path,
                                   const std::vector<std::string>& scripts, int64_t deadline_ms,
                                   size_t* included = nullptr);

// The answer of `compile`: "compiled N skipped M errors E uncached U
// warnings W elapsed_ms T timed_out 0|1" (one line). compiled and skipped must be there; the others
// are 0 when missing (an older script); unknown words are ignored.
struct CompileResult {
    int64_t compiled = 0;
    int64_t skipped = 0;    // not there, not a readable regular .php file, outside open_basedir
    int64_t errors = 0;     // opcache_compile_file failed (a syntax error, for one)
    // Compiled but not in the cache after: younger than
    // opcache.file_update_protection (2 s by default), a full cache, the blacklist.
    int64_t uncached = 0;
    int64_t warnings = 0;   // PHP warnings while it worked (in the pool's log, not the answer)
    int64_t elapsed_ms = 0;
    bool timed_out = false; // the deadline came first: the rest was skipped
};
std::optional<CompileResult> parse_compile_answer(std::string_view body);

}  // namespace fpmr
