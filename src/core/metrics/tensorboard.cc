#include "core/metrics/tensorboard.h"

#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <ctime>

#include "core/metrics/crc32c.h"
#include "core/util/error.h"
#include "core/util/fs.h"

namespace bkd {
namespace {

// ---- protobuf wire format (only what Event needs) ----------------------------------------------
enum WireType : uint32_t { kVarint = 0, kFixed64 = 1, kLengthDelimited = 2, kFixed32 = 5 };

void put_varint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(char(uint8_t(v) | 0x80));
    v >>= 7;
  }
  out.push_back(char(uint8_t(v)));
}
void put_key(std::string& out, uint32_t field, WireType wt) { put_varint(out, (uint64_t(field) << 3) | wt); }
void put_le(std::string& out, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(char(uint8_t(v >> (8 * i))));
}
void put_double(std::string& out, uint32_t field, double v) {
  uint64_t bits;
  std::memcpy(&bits, &v, 8);
  put_key(out, field, kFixed64);
  put_le(out, bits, 8);
}
void put_float(std::string& out, uint32_t field, float v) {
  uint32_t bits;
  std::memcpy(&bits, &v, 4);
  put_key(out, field, kFixed32);
  put_le(out, bits, 4);
}
void put_int64(std::string& out, uint32_t field, int64_t v) {
  if (v == 0) return;  // proto3 default: not written
  put_key(out, field, kVarint);
  put_varint(out, uint64_t(v));  // negatives take ten bytes, as int64 does on the wire
}
void put_bytes(std::string& out, uint32_t field, std::string_view b) {
  put_key(out, field, kLengthDelimited);
  put_varint(out, b.size());
  out.append(b.data(), b.size());
}

// Event field numbers.
constexpr uint32_t kWallTime = 1, kStep = 2, kFileVersion = 3, kSummary = 5, kSessionLog = 7;
// Summary.value = 1; Value.tag = 1, Value.simple_value = 2; SessionLog.status = 1, START = 1.
constexpr uint32_t kSummaryValue = 1, kValueTag = 1, kValueSimple = 2, kSessionStatus = 1, kStart = 1;

std::string host_name() {
  char buf[256] = {0};
  if (gethostname(buf, sizeof buf - 1) != 0 || !buf[0]) return "localhost";
  std::string h(buf);
  for (char& c : h)
    if (c == '/' || c == ' ') c = '_';
  return h;
}

// The records of an event file: (data, step), stopping at the first torn or corrupt record.
struct TfRecord {
  std::string data;
  int64_t step = 0;
  bool has_step = false;
};

bool read_varint(std::string_view s, size_t& pos, uint64_t& v) {
  v = 0;
  for (int shift = 0; shift < 64 && pos < s.size(); shift += 7) {
    const uint8_t b = static_cast<uint8_t>(s[pos++]);
    v |= uint64_t(b & 0x7f) << shift;
    if (!(b & 0x80)) return true;
  }
  return false;
}

// The Event's step field (2, varint), if present; false when the message does not parse.
bool event_step(std::string_view e, int64_t& step, bool& has_step) {
  size_t pos = 0;
  has_step = false;
  while (pos < e.size()) {
    uint64_t key, v;
    if (!read_varint(e, pos, key)) return false;
    switch (key & 7) {
      case kVarint:
        if (!read_varint(e, pos, v)) return false;
        if ((key >> 3) == kStep) step = static_cast<int64_t>(v), has_step = true;
        break;
      case kFixed64: pos += 8; break;
      case kFixed32: pos += 4; break;
      case kLengthDelimited:
        if (!read_varint(e, pos, v) || v > e.size() - pos) return false;
        pos += v;
        break;
      default: return false;
    }
    if (pos > e.size()) return false;
  }
  return true;
}

uint64_t get_le(std::string_view s, size_t at, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v |= uint64_t(static_cast<uint8_t>(s[at + i])) << (8 * i);
  return v;
}

std::vector<TfRecord> read_records(const std::string& bytes) {
  std::vector<TfRecord> out;
  size_t pos = 0;
  while (pos + 12 <= bytes.size()) {
    const std::string_view len_bytes(bytes.data() + pos, 8);
    const uint64_t n = get_le(bytes, pos, 8);
    if (get_le(bytes, pos + 8, 4) != crc32c_mask(crc32c(len_bytes))) break;
    if (n > bytes.size() - pos - 12 || bytes.size() - pos - 12 - n < 4) break;
    const std::string_view data(bytes.data() + pos + 12, n);
    if (get_le(bytes, pos + 12 + n, 4) != crc32c_mask(crc32c(data))) break;
    TfRecord r;
    r.data = std::string(data);
    if (!event_step(data, r.step, r.has_step)) break;
    out.push_back(std::move(r));
    pos += 12 + n + 4;
  }
  return out;
}

}  // namespace

std::vector<int64_t> tfevents_steps(const std::string& path) {
  std::vector<int64_t> steps;
  for (const auto& r : read_records(read_file(path))) steps.push_back(r.step);
  return steps;
}

int64_t trim_tfevents_file(const std::string& path, int64_t from_step) {
  const std::string bytes = read_file(path);
  const auto records = read_records(bytes);
  std::string kept;
  int64_t dropped = 0;
  size_t kept_bytes_total = 0;
  for (const auto& r : records) {
    kept_bytes_total += 16 + r.data.size();
    if (r.has_step && r.step >= from_step) {
      ++dropped;
      continue;
    }
    kept += tfrecord_frame(r.data);
  }
  const bool torn_tail = kept_bytes_total != bytes.size();
  if (dropped > 0 || torn_tail) write_file_atomic(path, kept);
  return dropped;
}

double wall_time_now() {
  timeval tv{};
  gettimeofday(&tv, nullptr);
  return double(tv.tv_sec) + double(tv.tv_usec) * 1e-6;
}

std::string tfrecord_frame(std::string_view data) {
  std::string out, len;
  put_le(len, data.size(), 8);
  out.reserve(data.size() + 16);
  out += len;
  put_le(out, crc32c_mask(crc32c(len)), 4);
  out.append(data.data(), data.size());
  put_le(out, crc32c_mask(crc32c(data)), 4);
  return out;
}

std::string tb_file_version_event(double wall_time) {
  std::string e;
  put_double(e, kWallTime, wall_time);
  put_bytes(e, kFileVersion, "brain.Event:2");
  return e;
}

std::string tb_scalars_event(double wall_time, int64_t step, const ScalarList& scalars) {
  std::string summary;
  for (const auto& [tag, value] : scalars) {
    std::string v;
    put_bytes(v, kValueTag, tag);
    put_float(v, kValueSimple, float(value));
    put_bytes(summary, kSummaryValue, v);
  }
  std::string e;
  put_double(e, kWallTime, wall_time);
  put_int64(e, kStep, step);
  put_bytes(e, kSummary, summary);
  return e;
}

std::string tb_session_start_event(double wall_time, int64_t step) {
  std::string log;
  put_key(log, kSessionStatus, kVarint);
  put_varint(log, kStart);
  std::string e;
  put_double(e, kWallTime, wall_time);
  put_int64(e, kStep, step);
  put_bytes(e, kSessionLog, log);
  return e;
}

TensorBoardWriter::TensorBoardWriter(const std::string& dir) {
  static std::atomic<int> counter{0};
  ensure_dir(dir);
  const double now = wall_time_now();
  path_ = join_path(dir, "events.out.tfevents." + std::to_string(int64_t(now)) + "." + host_name() + "." +
                             std::to_string(getpid()) + "." + std::to_string(counter++));
  f_ = std::fopen(path_.c_str(), "wb");
  if (!f_)
    throw Error("cannot create TensorBoard event file " + path_ + ": " + std::strerror(errno),
                "check that TB_DIR is writable, or set TENSORBOARD=0");
  write_record(tb_file_version_event(now));
  flush();
}

TensorBoardWriter::~TensorBoardWriter() {
  if (f_) std::fclose(f_);
}

void TensorBoardWriter::write_record(const std::string& event) {
  if (!f_) throw Error("TensorBoard event file " + path_ + " is closed");
  const std::string rec = tfrecord_frame(event);
  if (std::fwrite(rec.data(), 1, rec.size(), f_) != rec.size())
    throw Error("cannot write TensorBoard event file " + path_ + ": " + std::strerror(errno),
                "free disk space under TB_DIR, or set TENSORBOARD=0");
}

void TensorBoardWriter::add_scalars(int64_t step, const ScalarList& scalars, double wall_time) {
  write_record(tb_scalars_event(wall_time < 0 ? wall_time_now() : wall_time, step, scalars));
}

void TensorBoardWriter::session_start(int64_t step, double wall_time) {
  write_record(tb_session_start_event(wall_time < 0 ? wall_time_now() : wall_time, step));
}

void TensorBoardWriter::flush() {
  if (f_ && std::fflush(f_) != 0)
    throw Error("cannot write TensorBoard event file " + path_ + ": " + std::strerror(errno),
                "free disk space under TB_DIR, or set TENSORBOARD=0");
}

void TensorBoardWriter::close() {
  if (!f_) return;
  flush();
  std::fclose(f_);
  f_ = nullptr;
}

}  // namespace bkd
