// COORD_TEST_ASAN: 1 when this test is built with AddressSanitizer (GCC or Clang), else 0.
// Tests about the heap as glibc's malloc sees it need it: ASan's allocator replaces malloc, and
// mallinfo2/malloc_trim then say nothing about the memory in use.
#pragma once

#if defined(__SANITIZE_ADDRESS__)
#define COORD_TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define COORD_TEST_ASAN 1
#endif
#endif
#ifndef COORD_TEST_ASAN
#define COORD_TEST_ASAN 0
#endif
