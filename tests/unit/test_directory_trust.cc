// Who can change what lies beneath a directory: the rule fpm-replica-helper
// and the module's supervisor share.
#include <catch2/catch.hpp>

#include "directory_trust.h"

using namespace fpmr;

TEST_CASE("only root can change a root-owned directory nobody else may write", "[trust]") {
    CHECK(directory_trust(0, 040755) == DirectoryTrust::RootOnly);
    CHECK(directory_trust(0, 041777) == DirectoryTrust::RootOnly);  // /tmp
    CHECK(directory_trust(0, 041775) == DirectoryTrust::RootOnly);
    CHECK(directory_trust(1001, 040700) == DirectoryTrust::OtherOwner);
    CHECK(directory_trust(1001, 041777) == DirectoryTrust::OtherOwner);
    CHECK(directory_trust(0, 040775) == DirectoryTrust::GroupWritable);
    CHECK(directory_trust(0, 040777) == DirectoryTrust::GroupWritable);
    CHECK(directory_trust(0, 040757) == DirectoryTrust::OthersWritable);
    CHECK(only_root_can_change(0, 040555));
    CHECK_FALSE(only_root_can_change(0, 040757));
    CHECK_FALSE(only_root_can_change(33, 040755));
}
