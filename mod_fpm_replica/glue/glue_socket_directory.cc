// Creates what is missing of a replica's unix socket directory before its
// master starts, without following a symlink someone other than root can change.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <string>

#include "directory_trust.h"
#include "glue_supervisor_world.h"

namespace fpmr::glue {

// php-fpm does not create the directory of its listen socket; /run is a
// fresh tmpfs at every boot. Creates what is missing of it (root, 0755),
// as systemd's RuntimeDirectory= would. Walked one component at a time
// without following symlinks, so a symlink planted where the path runs
// through a directory someone else can write cannot send root's mkdir (and
// php-fpm's socket) elsewhere: a symlink is followed only when root owns it
// and the directory it is in can be changed by root alone (/var/run -> /run;
// core/directory_trust.h, the helper's rule too).

void ensure_socket_directory(const SocketSpec& socket, server_rec* s) {
    if (socket.kind != SocketSpec::Kind::Unix) return;
    std::string dir = socket.path.substr(0, socket.path.rfind('/'));
    int at = ::open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
    std::string walked;
    std::string untrusted;  // the first directory on the way others can change
    size_t from = 1;
    while (at >= 0 && from <= dir.size()) {
        struct stat here;
        if (untrusted.empty() && ::fstat(at, &here) == 0 && !only_root_can_change(here.st_uid, here.st_mode)) {
            untrusted = walked.empty() ? "/" : walked;
        }
        size_t slash = dir.find('/', from);
        std::string name = dir.substr(from, slash == std::string::npos ? std::string::npos : slash - from);
        from = slash == std::string::npos ? dir.size() + 1 : slash + 1;
        if (name.empty()) continue;
        walked += "/" + name;
        int next = ::openat(at, name.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (next < 0 && errno == ENOENT && !untrusted.empty()) {
            ap_log_error(APLOG_MARK, APLOG_ERR, 0, s, FPMRNO(00069)
                         "not creating the socket directory of %s: %s can be changed by "
                         "someone other than root", socket.path.c_str(), untrusted.c_str());
            break;
        }
        if (next < 0 && errno == ENOENT && ::mkdirat(at, name.c_str(), 0755) == 0) {
            ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, s, FPMRNO(00056)
                         "created the socket directory %s", walked.c_str());
            next = ::openat(at, name.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        } else if (next < 0 && (errno == ENOTDIR || errno == ELOOP)) {
            struct stat link, parent;
            bool trusted_link = ::fstatat(at, name.c_str(), &link, AT_SYMLINK_NOFOLLOW) == 0 &&
                                S_ISLNK(link.st_mode) && link.st_uid == 0 &&
                                ::fstat(at, &parent) == 0 && only_root_can_change(parent.st_uid, parent.st_mode);
            if (!trusted_link) {
                ap_log_error(APLOG_MARK, APLOG_ERR, 0, s, FPMRNO(00067)
                             "not creating the socket directory of %s: %s is a symlink someone "
                             "other than root can change", socket.path.c_str(), walked.c_str());
                ::close(at);
                return;
            }
            next = ::openat(at, name.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
        }
        ::close(at);
        at = next;
    }
    if (at >= 0) ::close(at);
}

}  // namespace fpmr::glue
