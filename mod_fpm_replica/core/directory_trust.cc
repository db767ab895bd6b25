// Who can change what lies beneath a directory.
#include "directory_trust.h"

namespace fpmr {

DirectoryTrust directory_trust(unsigned owner_uid, unsigned mode) {
    if (owner_uid != 0) return DirectoryTrust::OtherOwner;
    if (mode & 01000) return DirectoryTrust::RootOnly;  // sticky
    if (mode & 020) return DirectoryTrust::GroupWritable;
    if (mode & 002) return DirectoryTrust::OthersWritable;
    return DirectoryTrust::RootOnly;
}

}  // namespace fpmr
