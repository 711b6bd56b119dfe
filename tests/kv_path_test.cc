#include "kv/path.h"

#include <doctest/doctest.h>

#include <string>

#include "kv/limits.h"

using namespace coord::kv;

TEST_CASE("kv path: valid paths") {
  for (const char* p : {"/", "/a", "/app/locks/x", "/a-b/c.d/e_f", "/\xc3\xa9t\xc3\xa9", "/a/..b",
                        "/a/.hidden", "/\xf0\x9f\x98\x80"}) {
    CAPTURE(p);
    CHECK(check_path(p).ok());
  }
}

TEST_CASE("kv path: invalid paths") {
  for (const char* p : {"", "a", "a/b", "//", "/a/", "/a//b", "/a/./b", "/a/..", "/.", "/a\tb",
                        "/a\x7f", "/\xc3", "/\xc0\xaf", "/\xed\xa0\x80", "/\xf4\x90\x80\x80",
                        "/\xff"}) {
    CAPTURE(p);
    const Status s = check_path(p);
    CHECK(s.error == Error::InvalidPath);
    CHECK_FALSE(s.message.empty());
  }
  CHECK(check_path(std::string("/a\0b", 4)).error == Error::InvalidPath);
}

TEST_CASE("kv path: length limits") {
  const std::string segment(segment_bytes_max, 'x');
  CHECK(check_path("/" + segment).ok());
  CHECK(check_path("/" + segment + "x").error == Error::InvalidPath);
  std::string longest = "/";
  while (longest.size() + 2 <= path_bytes_max) longest += (longest.size() == 1 ? "a" : "/a");
  longest.resize(path_bytes_max);
  if (longest.back() == '/') longest.back() = 'b';
  CHECK(longest.size() == path_bytes_max);
  CHECK(check_path(longest).ok());
  CHECK(check_path(longest + "c").error == Error::InvalidPath);
}

TEST_CASE("kv path: helpers") {
  CHECK(parent_of("/a") == "/");
  CHECK(parent_of("/a/b/c") == "/a/b");
  CHECK(name_of("/a/b/c") == "c");
  CHECK(child_prefix("/") == "/");
  CHECK(child_prefix("/a") == "/a/");
  CHECK(join_path("/", "a") == "/a");
  CHECK(join_path("/a", "b") == "/a/b");
  CHECK(in_subtree("/a", "/a"));
  CHECK(in_subtree("/a", "/a/b/c"));
  CHECK_FALSE(in_subtree("/a", "/ab"));
  CHECK_FALSE(in_subtree("/a", "/"));
  CHECK(in_subtree("/", "/ab"));
  CHECK(is_child_of("/a", "/a/b"));
  CHECK_FALSE(is_child_of("/a", "/a/b/c"));
  CHECK_FALSE(is_child_of("/a", "/ab"));
  CHECK(is_child_of("/", "/a"));
  CHECK_FALSE(is_child_of("/", "/"));
}
