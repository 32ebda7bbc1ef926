#pragma once
// TensorBoard event files, written without a protobuf library: each record is TFRecord-framed
// (u64 length, masked CRC-32C of the length, data, masked CRC-32C of the data; little-endian) and
// holds one tensorflow.Event message encoded by hand in the protobuf wire format:
//   Event { double wall_time = 1; int64 step = 2; string file_version = 3; Summary summary = 5;
//           SessionLog session_log = 7; }
//   Summary { repeated Value value = 1; }   Value { string tag = 1; float simple_value = 2; }
//   SessionLog { enum status = 1 (START = 1); }
// The first record of every file is the file_version event ("brain.Event:2"), as TensorBoard expects.
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace bkd {

using ScalarList = std::vector<std::pair<std::string, double>>;  // (tag, value)

// Encoders, exposed for tests.
std::string tfrecord_frame(std::string_view data);
std::string tb_file_version_event(double wall_time);
std::string tb_scalars_event(double wall_time, int64_t step, const ScalarList& scalars);
std::string tb_session_start_event(double wall_time, int64_t step);
double wall_time_now();  // seconds since the epoch, microsecond resolution

// The step of each intact record of an event file, in order (records without a step count as 0); a
// torn record at the end (a killed writer) ends the list. Throws Error when the file cannot be read.
std::vector<int64_t> tfevents_steps(const std::string& path);
// Drops the records at steps >= from_step (keeping the file_version record) and a torn tail,
// rewriting the file atomically when anything goes; returns how many records were dropped.
int64_t trim_tfevents_file(const std::string& path, int64_t from_step);

class TensorBoardWriter {
 public:
  // Creates `dir` if needed and a new file in it: events.out.tfevents.<unix seconds>.<host>.<pid>.<n>.
  explicit TensorBoardWriter(const std::string& dir);
  ~TensorBoardWriter();
  TensorBoardWriter(const TensorBoardWriter&) = delete;
  TensorBoardWriter& operator=(const TensorBoardWriter&) = delete;

  // One event with one summary value per tag (values are stored as float32, as simple_value is).
  void add_scalars(int64_t step, const ScalarList& scalars, double wall_time = -1);
  // Marks a restart at `step`: TensorBoard then drops the events at steps >= `step` that earlier
  // files of this run logged (a resumed training run logs those steps again).
  void session_start(int64_t step, double wall_time = -1);
  void flush();
  void close();
  const std::string& path() const { return path_; }

 private:
  void write_record(const std::string& event);
  std::string path_;
  std::FILE* f_ = nullptr;
};

}  // namespace bkd
