// Deleting a release directory as root when its tree belongs to someone
// else (the deploy user): every level is opened relative to its parent
// without following symlinks, so a directory swapped for a symlink during
// the walk is unlinked as a link, never followed out of the tree.
#pragma once

#include <string>

namespace fpmr::cli {

// Removes `name` (one path component) from the directory `parent` and
// everything below it, staying on the file system it is on. False with
// `error` set when anything could not be removed (what was removed stays
// removed).
bool remove_tree(const std::string& parent, const std::string& name, std::string* error);

}  // namespace fpmr::cli
