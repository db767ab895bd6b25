// Release pinning's resolution: which release directory the release symlink
// names right now. Read once per request (one readlink, by default), safely
// from many threads at once, without a lock on the common path: the answer
// is an immutable object published through an atomic pointer and kept alive
// for the resolver's lifetime, so no request ever sees a torn path. A new
// object is made only when the answer changes (a deploy), so memory grows by
// one small object per flip.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace fpmr {

struct ReleaseResolution {
    bool ok = false;
    std::string release_dir;  // real path of the release directory (no symlink in it)
    std::string link_target;  // what readlink said (relative targets joined to the link's dir)
    std::string error;        // one sentence when !ok

    bool operator==(const ReleaseResolution& o) const {
        return ok == o.ok && release_dir == o.release_dir && link_target == o.link_target &&
               error == o.error;
    }
};

class ReleaseResolver {
public:
    // `symlink_path`: the release symlink, absolute and normalised.
    // `reuse_interval_us`: FpmReplicaResolveInterval; 0 reads the link on every call.
    ReleaseResolver(std::string symlink_path, int64_t reuse_interval_us);

    // The release the symlink names now. Never null; valid as long as the resolver.
    const ReleaseResolution* resolve(int64_t now_us);

    // True once per error-log interval (max(reuse interval, 1 s)): callers
    // log a failed resolution only when it says so. `last_logged` is where the
    // time of the last log line lives; by default this resolver's own, or a
    // counter in memory shared by every process (see set_error_log_clock).
    bool should_log_error(int64_t now_us);
    void set_error_log_clock(std::atomic<int64_t>* shared) { error_log_clock_ = shared; }

    const std::string& symlink_path() const { return symlink_path_; }
    int64_t reuse_interval_us() const { return reuse_interval_us_; }

    // A release whose link target is unchanged is re-checked (realpath, is a
    // directory) at most this often, so a deleted release or an inner link
    // that changed is noticed within this time while the common case stays
    // one readlink.
    static constexpr int64_t kRevalidateUs = 1000000;

private:
    std::unique_ptr<ReleaseResolution> resolve_fully(const std::string& link_target);
    // Makes `fresh` the current answer unless it equals the current one.
    const ReleaseResolution* publish(std::unique_ptr<ReleaseResolution> fresh, int64_t now_us);

    const std::string symlink_path_;
    const int64_t reuse_interval_us_;
    std::atomic<const ReleaseResolution*> current_{nullptr};
    std::atomic<int64_t> last_read_us_{0};  // last readlink
    std::atomic<int64_t> last_full_us_{0};  // last full resolution (realpath + stat)
    std::atomic<int64_t> last_error_log_us_{0};
    std::atomic<int64_t>* error_log_clock_ = &last_error_log_us_;
    std::mutex retired_mu_;  // guards answers_: taken only when the answer changes
    std::vector<std::unique_ptr<ReleaseResolution>> answers_;  // every answer ever published
};

// The one release validation: `path` (a symlink or a directory) resolved to
// a real path without any symlink in it, which must be a directory. nullopt
// with one sentence in `error` otherwise.
std::optional<std::string> resolve_release_dir(const std::string& path, std::string* error);
// realpath(3) of `path` (every symlink followed), "" when it does not resolve.
std::string real_path(const std::string& path);

// A release a deploy tool asks to prepare (status action=prepare), checked
// as untrusted input: absolute, an existing directory after resolution, and
// a release of this symlink's application, i.e. directly inside the
// directory that holds the release the symlink names now ("releases/").
// Returns the resolved path, or nullopt with the reason in `why`.
std::optional<std::string> validate_prepared_release(const std::string& symlink,
                                                     const std::string& requested, std::string* why);

// Path helpers (no filesystem access).

// Absolute, no "." or ".." components, no doubled or trailing slash ("/" stays "/").
bool is_normalized_absolute_path(std::string_view path);
// Removes trailing slashes and doubled slashes; returns "" for a relative path
// or one with "." or ".." components.
std::string normalize_absolute_path(std::string_view path);
// The directory holding `path` ("/srv/app" of "/srv/app/current"; "/" for
// "/x" and for a path without a slash).
std::string parent_directory(std::string_view path);
// `path` equals `dir` or lies under it (component-wise, not string prefix).
bool path_is_under(std::string_view path, std::string_view dir);
// Replaces the leading `from` directory of `path` with `to`; `path` must be under `from`.
std::string rebase_path(std::string_view path, std::string_view from, std::string_view to);

}  // namespace fpmr
