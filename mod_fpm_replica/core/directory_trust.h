// The one rule for "only root can change what lies beneath this directory",
// shared by fpm-replica-helper (release roots and the paths to them) and the
// module's supervisor (socket directories it creates as root), which both
// link it (no httpd and no helper type here).
#pragma once

namespace fpmr {

enum class DirectoryTrust {
    RootOnly,        // owned by root, not writable by group or others, or only with the sticky bit
    OtherOwner,      // owned by someone else, who may do anything there
    GroupWritable,   // root's, writable by its group without the sticky bit
    OthersWritable,  // root's, writable by others without the sticky bit
};

// From a directory's owner and mode (st_uid, st_mode). With the sticky bit
// others may rename and remove only entries of their own. ACLs are not read
// (docs/helper.md).
DirectoryTrust directory_trust(unsigned owner_uid, unsigned mode);

inline bool only_root_can_change(unsigned owner_uid, unsigned mode) {
    return directory_trust(owner_uid, mode) == DirectoryTrust::RootOnly;
}

}  // namespace fpmr
