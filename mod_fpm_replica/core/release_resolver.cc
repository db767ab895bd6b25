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

std::shared_ptr<const ReleaseResolution> ReleaseResolver::resolve(int64_t now_us) {
    std::shared_ptr<const ReleaseResolution> last;
    int64_t last_full;
    {
        std::lock_guard<std::mutex> lock(mu_);
        last = last_;
        last_full = last_full_us_;
        if (last && reuse_interval_us_ > 0 && now_us - last_read_us_ < reuse_interval_us_) {
            return last;
        }
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
        auto failed = std::make_shared<ReleaseResolution>();
        failed->error = "release symlink '" + symlink_path_ + "' cannot be read: " +
                        std::strerror(errno);
        std::lock_guard<std::mutex> lock(mu_);
        last_ = failed;
        last_read_us_ = last_full_us_ = now_us;
        return failed;
    }

    if (last && last->ok && last->link_target == target && now_us - last_full < kRevalidateUs) {
        std::lock_guard<std::mutex> lock(mu_);
        last_read_us_ = now_us;
        return last;
    }
    auto fresh = resolve_fully(target);
    std::lock_guard<std::mutex> lock(mu_);
    last_ = fresh;
    last_read_us_ = last_full_us_ = now_us;
    return fresh;
}

std::shared_ptr<const ReleaseResolution> ReleaseResolver::resolve_fully(const std::string& target) {
    auto r = std::make_shared<ReleaseResolution>();
    r->link_target = target;
    // realpath follows the whole chain (relative or absolute links, links
    // inside the target) and returns a path without any symlink in it.
    char* real = ::realpath(symlink_path_.c_str(), nullptr);
    if (!real) {
        r->error = "release symlink '" + symlink_path_ + "' is dangling (-> " + target + ": " +
                   std::strerror(errno) + ")";
        return r;
    }
    r->release_dir = real;
    std::free(real);
    struct stat st;
    if (::stat(r->release_dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
        r->error = "release symlink '" + symlink_path_ + "' names '" + r->release_dir +
                   "', which is not a directory";
        r->release_dir.clear();
        return r;
    }
    r->ok = true;
    return r;
}

bool ReleaseResolver::should_log_error(int64_t now_us) {
    int64_t every = reuse_interval_us_ > 1000000 ? reuse_interval_us_ : 1000000;
    int64_t last = last_error_log_us_.load();
    if (last != 0 && now_us - last < every) return false;
    return last_error_log_us_.compare_exchange_strong(last, now_us);
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
