// The release symlink as fpm-replica deploy and rollback change it: one
// rename, in the form the link already has (deploy tools and the docs
// write relative links), and `<symlink>.previous` beside it.
#pragma once

#include <optional>
#include <string>

namespace fpmr::cli {

// The real path of the directory `path` names (a release, or the
// directory holding the link), by the module's one release validation
// (core's resolve_release_dir); nullopt when it names none.
std::optional<std::string> release_directory(const std::string& path);
bool is_symlink(const std::string& path);

// Points `path` at `value` (the link's text) through a new link beside it
// and one rename, as deploy tools do. Throws Failure when it cannot.
void replace_symlink(const std::string& value, const std::string& path);

// Flips `link` to the release `target` (a real path): records the link's
// current text as `<link>.previous`, then writes `target` relative to the
// link's directory when the link was relative, as it is when absolute.
void flip_release_symlink(const std::string& link, const std::string& target);

}  // namespace fpmr::cli
