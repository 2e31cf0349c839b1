// control/common/http_path.h: path splitting and the two percent-decoders.
#include "control/common/http_path.h"

#include <gtest/gtest.h>

namespace cordon::http_path {
namespace {

using Parts = std::vector<std::string>;

TEST(SplitPath, DropsEmptySegments) {
  EXPECT_EQ(split_path("/v1/policy/versions/3"), (Parts{"v1", "policy", "versions", "3"}));
  EXPECT_EQ(split_path("a//b/"), (Parts{"a", "b"}));
  EXPECT_EQ(split_path("///"), Parts{});
  EXPECT_EQ(split_path(""), Parts{});
  EXPECT_EQ(split_path("/"), Parts{});
  EXPECT_EQ(split_path("x"), Parts{"x"});
}

TEST(SplitPath, KeepsDotSegmentsForTheCallerToRefuse) {
  // Splitting does not resolve "..": the static-file handler sees it and refuses it.
  EXPECT_EQ(split_path("/a/../b/."), (Parts{"a", "..", "b", "."}));
}

TEST(PercentDecodeStrict, DecodesEscapes) {
  EXPECT_EQ(percent_decode_strict("a%20b"), "a b");
  EXPECT_EQ(percent_decode_strict("%2e%2E"), "..");
  EXPECT_EQ(percent_decode_strict("%41%7a"), "Az");
  EXPECT_EQ(percent_decode_strict("a+b"), "a+b");  // '+' is not a space in a path
  EXPECT_EQ(percent_decode_strict(""), "");
  const auto nul = percent_decode_strict("a%00b");
  ASSERT_TRUE(nul);
  EXPECT_EQ(*nul, std::string("a\0b", 3));  // decoded; the caller refuses NUL
}

TEST(PercentDecodeStrict, RefusesMalformedEscapes) {
  EXPECT_EQ(percent_decode_strict("%"), std::nullopt);
  EXPECT_EQ(percent_decode_strict("a%4"), std::nullopt);
  EXPECT_EQ(percent_decode_strict("%4g"), std::nullopt);
  EXPECT_EQ(percent_decode_strict("%g4"), std::nullopt);
  EXPECT_EQ(percent_decode_strict("ok%2"), std::nullopt);
  EXPECT_EQ(percent_decode_strict("%%41"), std::nullopt);
}

TEST(PercentDecodeQuery, PlusIsSpaceAndMalformedEscapesStay) {
  EXPECT_EQ(percent_decode_query("a+b%2Bc"), "a b+c");
  EXPECT_EQ(percent_decode_query("100%"), "100%");
  EXPECT_EQ(percent_decode_query("%zz%4"), "%zz%4");
  EXPECT_EQ(percent_decode_query("%41"), "A");
  EXPECT_EQ(percent_decode_query(""), "");
}

TEST(HexValue, AllDigits) {
  EXPECT_EQ(hex_value('0'), 0);
  EXPECT_EQ(hex_value('9'), 9);
  EXPECT_EQ(hex_value('a'), 10);
  EXPECT_EQ(hex_value('F'), 15);
  EXPECT_EQ(hex_value('g'), -1);
  EXPECT_EQ(hex_value('/'), -1);
}

}  // namespace
}  // namespace cordon::http_path
