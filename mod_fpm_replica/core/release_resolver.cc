// Release symlink resolution with a thread-safe cache.
#include "release_resolver.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace fpmr {

ReleaseResolver::ReleaseResolver(std::string symlink_path, int64_t reuse_interval_us)
    : symlink_path_(std::move(symlink_path)), reuse_interval_us_(reuse_interval_us) {}

const ReleaseResolution* ReleaseResolver::resolve(int64_t now_us) {
    const ReleaseResolution* current = current_.load(std::memory_order_acquire);
    if (current && reuse_interval_us_ > 0 &&
        now_us - last_read_us_.load(std::memory_order_relaxed) < reuse_interval_us_) {
        return current;
    }

    char buf[PATH_MAX];
    ssize_t n = ::readlink(symlink_path_.c_str(), buf, sizeof buf - 1);
    std::string target;
    if (n >= 0) {
        buf[n] = '\0';
        target = buf;
        if (!target.empty() && target[0] != '/') {
            target = symlink_path_.substr(0, symlink_path_.rfind('/') + 1) + target;
        }
    } else if (errno == EINVAL) {
        target = symlink_path_;  // a plain directory: it is its own release
    } else {
        auto failed = std::make_unique<ReleaseResolution>();
        failed->error = "release symlink '" + symlink_path_ + "' cannot be read: " +
                        std::strerror(errno);
        return publish(std::move(failed), now_us);
    }

    if (current && current->ok && current->link_target == target &&
        now_us - last_full_us_.load(std::memory_order_relaxed) < kRevalidateUs) {
        // Only a reuse interval needs the time of the last read; without one,
        // skip the store so threads do not bounce its cache line.
        if (reuse_interval_us_ > 0) last_read_us_.store(now_us, std::memory_order_relaxed);
        return current;
    }
    return publish(resolve_fully(target), now_us);
}

const ReleaseResolution* ReleaseResolver::publish(std::unique_ptr<ReleaseResolution> fresh,
                                                  int64_t now_us) {
    last_read_us_.store(now_us, std::memory_order_relaxed);
    last_full_us_.store(now_us, std::memory_order_relaxed);
    std::lock_guard<std::mutex> lock(retired_mu_);
    const ReleaseResolution* current = current_.load(std::memory_order_acquire);
    if (current && *current == *fresh) return current;
    const ReleaseResolution* published = fresh.get();
    answers_.push_back(std::move(fresh));
    current_.store(published, std::memory_order_release);
    return published;
}

std::unique_ptr<ReleaseResolution> ReleaseResolver::resolve_fully(const std::string& target) {
    auto r = std::make_unique<ReleaseResolution>();
    r->link_target = target;
    std::string error;
    std::optional<std::string> dir = resolve_release_dir(symlink_path_, &error);
    if (!dir) {
        r->error = "release symlink '" + symlink_path_ + "' (-> " + target + ") " + error;
        return r;
    }
    r->release_dir = std::move(*dir);
    r->ok = true;
    return r;
}

std::optional<std::string> resolve_release_dir(const std::string& path, std::string* error) {
    // realpath follows the whole chain (relative or absolute links, links
    // inside the target) and returns a path without any symlink in it.
    std::string out = real_path(path);
    if (out.empty()) {
        *error = std::string("is dangling (") + std::strerror(errno) + ")";
        return std::nullopt;
    }
    struct stat st;
    if (::stat(out.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
        *error = "names '" + out + "', which is not a directory";
        return std::nullopt;
    }
    return out;
}

std::string real_path(const std::string& path) {
    char* real = ::realpath(path.c_str(), nullptr);
    if (!real) return {};
    std::string out = real;
    std::free(real);
    return out;
}

std::optional<std::string> validate_prepared_release(const std::string& symlink,
                                                     const std::string& requested, std::string* why) {
    std::string error;
    if (requested.empty() || requested[0] != '/' || requested.size() >= 4096 ||
        requested.find('\0') != std::string::npos) {
        *why = "release '" + requested + "' is not an absolute path";
        return std::nullopt;
    }
    std::optional<std::string> dir = resolve_release_dir(requested, &error);
    if (!dir) {
        *why = "release '" + requested + "' " + error;
        return std::nullopt;
    }
    std::optional<std::string> current = resolve_release_dir(symlink, &error);
    if (!current) {
        *why = "the release symlink '" + symlink + "' " + error + ": nothing to prepare against";
        return std::nullopt;
    }
    std::string releases = parent_directory(*current);
    if (releases == "/" || parent_directory(*dir) != releases) {
        *why = "release '" + requested + "' (" + *dir + ") is not a directory in " + releases +
               ", where the release symlink's releases are";
        return std::nullopt;
    }
    return dir;
}

bool ReleaseResolver::should_log_error(int64_t now_us) {
    int64_t every = reuse_interval_us_ > 1000000 ? reuse_interval_us_ : 1000000;
    int64_t last = error_log_clock_->load();
    if (last != 0 && now_us - last < every) return false;
    return error_log_clock_->compare_exchange_strong(last, now_us);
}

bool is_normalized_absolute_path(std::string_view path) {
    return !path.empty() && normalize_absolute_path(path) == path;
}

std::string normalize_absolute_path(std::string_view path) {
    if (path.empty() || path[0] != '/') return {};
    std::string out;
    size_t i = 0;
    while (i < path.size()) {
        while (i < path.size() && path[i] == '/') ++i;
        size_t end = path.find('/', i);
        if (end == std::string_view::npos) end = path.size();
        std::string_view part = path.substr(i, end - i);
        if (part == "." || part == "..") return {};
        if (!part.empty()) {
            out += '/';
            out += part;
        }
        i = end;
    }
    return out.empty() ? "/" : out;
}

std::string parent_directory(std::string_view path) {
    size_t slash = path.rfind('/');
    return slash == 0 || slash == std::string_view::npos ? "/" : std::string(path.substr(0, slash));
}

bool path_is_under(std::string_view path, std::string_view dir) {
    if (dir == "/") return !path.empty() && path[0] == '/';
    if (path.size() < dir.size() || path.substr(0, dir.size()) != dir) return false;
    return path.size() == dir.size() || path[dir.size()] == '/';
}

std::string rebase_path(std::string_view path, std::string_view from, std::string_view to) {
    std::string out(to);
    if (from == "/") {
        if (path != "/") out += path;
        return out;
    }
    out += path.substr(from.size());
    return out;
}

}  // namespace fpmr
