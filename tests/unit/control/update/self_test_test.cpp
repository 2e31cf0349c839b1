#include "control/update/self_test.h"

#include <gtest/gtest.h>

namespace cordon::control::update {
namespace {

TEST(CommandSelfTest, PassesWhenTheProgramExitsZero) {
  CommandSelfTest t({"/bin/sh", "-c", "echo all verdicts as expected"}, {},
                    std::chrono::seconds(10));
  EXPECT_TRUE(t.run().ok());
}

TEST(CommandSelfTest, FailureSaysTheExitCodeAndTheLastOutput) {
  CommandSelfTest t(
      {"/bin/sh", "-c", "echo starting; echo \"case $CASE: verdict changed\" >&2; exit 3"},
      {"CASE=app-hl7-oru-passes"}, std::chrono::seconds(10));
  Status s = t.run();
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, "self_test");
  EXPECT_NE(s.error().message.find("exit code 3"), std::string::npos) << s.error().message;
  EXPECT_NE(s.error().message.find("case app-hl7-oru-passes: verdict changed"), std::string::npos)
      << s.error().message;
}

TEST(CommandSelfTest, AProgramThatHangsIsKilledAtTheDeadline) {
  const auto start = std::chrono::steady_clock::now();
  // The child's own child holds the pipe too: the whole process group is killed.
  CommandSelfTest t({"/bin/sh", "-c", "sleep 60 & sleep 60"}, {}, std::chrono::seconds(1));
  Status s = t.run();
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("timed out after 1 s"), std::string::npos) << s.error().message;
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(20));
}

TEST(CommandSelfTest, AMissingProgramFails) {
  CommandSelfTest t({"/nonexistent/update-self-test"}, {}, std::chrono::seconds(5));
  Status s = t.run();
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("cannot run /nonexistent/update-self-test"), std::string::npos)
      << s.error().message;
}

}  // namespace
}  // namespace cordon::control::update
