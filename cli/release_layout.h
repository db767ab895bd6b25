// Where fpm-replica may change files, and with whose rights. The release
// symlink's path comes from the status document, which an httpd child
// serves; a child is untrusted (shared_state.h), so before the CLI flips a
// link or deletes a release it checks the deploy layout on disk itself,
// and when it runs as root it makes the change with the rights of the
// layout's owner, never more than that owner has.
#pragma once

#include <sys/types.h>

#include <functional>
#include <string>

namespace fpmr::cli {

// <app>/current -> releases/<name>, and <app>/releases/<name>: Capistrano's
// and Deployer's layout, and the docs'.
struct ReleaseLayout {
    std::string link;          // as given: <app>/current
    std::string link_path;     // app_dir + "/current": where changes are made, so that a
                               // symlink on the way to the link given cannot move them
    std::string app_dir;       // real path of the link's directory
    std::string releases_dir;  // app_dir + "/releases", a directory (not a symlink)
    std::string current;       // real path of the release the link names
    uid_t owner = 0;           // of app_dir and releases_dir (the same user)
    gid_t group = 0;           // releases_dir's group
};

// The layout of `link`, checked: the link is a symlink naming a directory in
// <its directory>/releases; both directories belong to one user and only
// that user (or root) can change them; when that user is root, so is every
// directory above. Throws Failure saying what is wrong and that nothing was
// changed.
ReleaseLayout check_release_layout(const std::string& link);

// Runs `change` with the rights for changing files in `layout`: the CLI's
// own when it is not root, or when the layout is root's; otherwise in a
// child process that has become the layout's owner (its group, no others).
// A Failure thrown by `change` is thrown here with the same message.
void change_as_layout_owner(const ReleaseLayout& layout, const std::function<void()>& change);

}  // namespace fpmr::cli
