#pragma once
// A 64-byte aligned, uninitialized array: packed weights and activation rows are read with full
// cache lines and wide vector loads. Uninitialized on purpose: the 7B dry-run fills 1.6 GB once and
// must not pay a second pass (and a second page touch) for zero-filling.
#include <cstddef>
#include <cstdlib>
#include <memory>
#include <new>

namespace bkd {

template <typename T>
class AlignedBuffer {
 public:
  AlignedBuffer() = default;
  explicit AlignedBuffer(size_t n) { resize(n); }

  // Discards the contents; the new elements are uninitialized.
  void resize(size_t n) {
    if (n == size_) return;
    ptr_.reset();
    size_ = 0;
    if (n == 0) return;
    const size_t bytes = (n * sizeof(T) + 63) / 64 * 64;
    void* p = std::aligned_alloc(64, bytes);
    if (!p) throw std::bad_alloc();
    ptr_.reset(static_cast<T*>(p));
    size_ = n;
  }
  T* data() { return ptr_.get(); }
  const T* data() const { return ptr_.get(); }
  size_t size() const { return size_; }
  size_t bytes() const { return size_ * sizeof(T); }
  T& operator[](size_t i) { return ptr_.get()[i]; }
  const T& operator[](size_t i) const { return ptr_.get()[i]; }

 private:
  struct Free {
    void operator()(T* p) const { std::free(p); }
  };
  std::unique_ptr<T, Free> ptr_;
  size_t size_ = 0;
};

}  // namespace bkd
