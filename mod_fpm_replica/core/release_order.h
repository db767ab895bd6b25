// The release directories beside a release, newest first: what
// `fpm-replica releases` and `prune` list, and where asset continuity
// (FpmReplicaAssetFallback) looks for a file the pinned release lacks.
#pragma once

#include <string>
#include <vector>

namespace fpmr {

// "r9" < "r10", "2026-11-23T0801" < "2026-11-24T0900": runs of digits
// compare as numbers, so Capistrano's timestamps, Deployer's numbers and
// r1..rN all sort the way they were made.
bool natural_less(const std::string& a, const std::string& b);

struct ReleaseDirectory {
    std::string name;  // the entry in the releases directory
    std::string path;  // parent + "/" + name
};
// The directories (not symlinks to them) in the directory holding
// `release_dir` (a real path), itself included, newest first by
// natural_less of their names.
std::vector<ReleaseDirectory> releases_beside(const std::string& release_dir);

}  // namespace fpmr
