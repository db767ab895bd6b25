#include "release_layout.h"

#include <grp.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "directory_trust.h"
#include "release_resolver.h"
#include "status_client.h"

namespace fpmr::cli {

namespace {

// Writable by someone besides its owner (group or others, without the sticky bit).
bool writable_by_others(const struct stat& st) {
    bool sticky = st.st_mode & S_ISVTX;
    return !sticky && (st.st_mode & (S_IWGRP | S_IWOTH));
}

[[noreturn]] void refuse(const std::string& link, const std::string& why) {
    throw Failure("will not change files for " + link + ": " + why + "; nothing was changed");
}

}  // namespace

ReleaseLayout check_release_layout(const std::string& link) {
    ReleaseLayout layout;
    layout.link = link;
    struct stat st;
    if (link.empty() || link[0] != '/' || ::lstat(link.c_str(), &st) != 0 || !S_ISLNK(st.st_mode)) {
        refuse(link, "it is not a symlink (a release symlink is an absolute path naming a symlink)");
    }
    layout.app_dir = real_path(parent_directory(link));
    layout.releases_dir = layout.app_dir + "/releases";
    layout.link_path = layout.app_dir + link.substr(link.find_last_of('/'));
    layout.current = real_path(layout.link_path);
    struct stat app, releases;
    if (layout.app_dir.empty() || ::lstat(layout.app_dir.c_str(), &app) != 0 ||
        ::lstat(layout.releases_dir.c_str(), &releases) != 0 || !S_ISDIR(releases.st_mode)) {
        refuse(link, "there is no directory " + layout.releases_dir + " beside it");
    }
    if (layout.current.empty() || parent_directory(layout.current) != layout.releases_dir) {
        refuse(link, "it does not name a release in " + layout.releases_dir);
    }
    if (app.st_uid != releases.st_uid) {
        refuse(link, layout.app_dir + " and " + layout.releases_dir + " belong to different users");
    }
    if (writable_by_others(app) || writable_by_others(releases)) {
        refuse(link, layout.app_dir + " or " + layout.releases_dir + " is writable by others than its owner");
    }
    layout.owner = releases.st_uid;
    layout.group = releases.st_gid;
    if (layout.owner == 0) {
        // Root's layout: changed as root, so nobody else may be able to
        // swap anything on the way to it either.
        for (std::string dir = parent_directory(layout.app_dir);; dir = parent_directory(dir)) {
            struct stat up;
            if (::lstat(dir.c_str(), &up) != 0 || !S_ISDIR(up.st_mode) ||
                !only_root_can_change(up.st_uid, up.st_mode)) {
                refuse(link, dir + " is not changeable by root only, above a layout root owns");
            }
            if (dir == "/") break;
        }
    }
    return layout;
}

void change_as_layout_owner(const ReleaseLayout& layout, const std::function<void()>& change) {
    if (::geteuid() != 0 || layout.owner == 0) {
        change();
        return;
    }
    int report[2];
    if (::pipe(report) != 0) throw Failure(std::string("cannot make a pipe: ") + std::strerror(errno));
    pid_t pid = ::fork();
    if (pid < 0) {
        ::close(report[0]);
        ::close(report[1]);
        throw Failure(std::string("cannot fork: ") + std::strerror(errno));
    }
    if (pid == 0) {
        ::close(report[0]);
        std::string message;
        if (::setgroups(0, nullptr) != 0 || ::setgid(layout.group) != 0 || ::setuid(layout.owner) != 0 ||
            ::getuid() != layout.owner || ::geteuid() != layout.owner) {
            message = "cannot become the owner (uid " + std::to_string(layout.owner) + ") of " +
                      layout.releases_dir + ": " + std::strerror(errno);
        } else {
            try {
                change();
            } catch (const std::exception& e) {
                message = e.what();
            }
        }
        if (!message.empty()) {
            ssize_t ignored = ::write(report[1], message.data(), message.size());
            (void)ignored;
        }
        ::_exit(message.empty() ? 0 : 1);
    }
    ::close(report[1]);
    std::string message;
    char buf[1024];
    ssize_t n;
    while ((n = ::read(report[0], buf, sizeof buf)) > 0 || (n < 0 && errno == EINTR)) {
        if (n > 0) message.append(buf, static_cast<size_t>(n));
    }
    ::close(report[0]);
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        throw Failure(message.empty() ? "the change as " + layout.releases_dir + "'s owner failed" : message);
    }
}

}  // namespace fpmr::cli
