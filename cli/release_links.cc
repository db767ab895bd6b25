#include "release_links.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstring>
#include <filesystem>

#include "release_resolver.h"
#include "status_client.h"

namespace fpmr::cli {

std::optional<std::string> release_directory(const std::string& path) {
    std::string why;
    return resolve_release_dir(path, &why);
}

bool is_symlink(const std::string& path) {
    struct stat st;
    return ::lstat(path.c_str(), &st) == 0 && S_ISLNK(st.st_mode);
}

namespace {

std::string read_link(const std::string& path) {
    char text[PATH_MAX];
    ssize_t n = ::readlink(path.c_str(), text, sizeof text - 1);
    if (n < 0) return "";
    return std::string(text, static_cast<size_t>(n));
}

std::string directory_of(const std::string& path) {
    std::string dir = std::filesystem::path(path).parent_path().string();
    return dir.empty() ? "." : dir;
}

}  // namespace

void replace_symlink(const std::string& value, const std::string& path) {
    std::string tmp = path + ".tmp-" + std::to_string(::getpid());
    ::unlink(tmp.c_str());
    if (::symlink(value.c_str(), tmp.c_str()) != 0 || ::rename(tmp.c_str(), path.c_str()) != 0) {
        std::string why = std::strerror(errno);
        ::unlink(tmp.c_str());
        throw Failure("cannot replace " + path + ": " + why);
    }
}

void flip_release_symlink(const std::string& link, const std::string& target) {
    std::string old_value = is_symlink(link) ? read_link(link) : release_directory(link).value_or("");
    replace_symlink(old_value, link + ".previous");
    if (!old_value.empty() && old_value[0] == '/') {
        replace_symlink(target, link);
        return;
    }
    // Relative to where the kernel reads it from: the link's directory.
    std::string base = release_directory(directory_of(link)).value_or(directory_of(link));
    replace_symlink(std::filesystem::path(target).lexically_relative(base).string(), link);
}

}  // namespace fpmr::cli
