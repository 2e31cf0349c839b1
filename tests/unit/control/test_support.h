// Shared by the control-plane unit tests: example policies, and a scratch directory per
// test (the state dir of a store, sockets).
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace cordon::control::testing {

// The text of examples/policies/NAME.
inline std::string example(const std::string& name) {
  std::ifstream in(std::string(CORDON_SOURCE_DIR) + "/examples/policies/" + name);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// The lab policy (examples/policies/lab.json) without the rule named `rule`.
inline std::string lab_without(const std::string& rule) {
  boost::json::value v = boost::json::parse(example("lab.json"));
  boost::json::array& rules = v.at("devices").as_array()[0].at("rules").as_array();
  for (auto it = rules.begin(); it != rules.end(); ++it) {
    if (it->at("name").as_string() == rule) {
      rules.erase(it);
      break;
    }
  }
  return boost::json::serialize(v);
}

// An empty directory named after the running test, removed when it goes out of scope.
class ScratchDir {
 public:
  explicit ScratchDir(const std::string& prefix)
      : path_(std::filesystem::temp_directory_path() /
              (prefix + "-" + std::to_string(::getpid()) + "-" +
               ::testing::UnitTest::GetInstance()->current_test_info()->name())) {
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~ScratchDir() { std::filesystem::remove_all(path_); }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  std::string str() const { return path_.string(); }

 private:
  std::filesystem::path path_;
};

}  // namespace cordon::control::testing
