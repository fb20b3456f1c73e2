// TensorBoard event files: the training curves of metrics.jsonl in the form
// `tensorboard --logdir OUTPUT_DIR` reads, without linking TensorFlow.
//
// An event file is a TFRecord stream of serialized Event messages
// (proto/tensorboard_event.proto). Each record is
//   uint64 length (little-endian) | uint32 masked CRC-32C of those 8 bytes |
//   the data | uint32 masked CRC-32C of the data,
// where masked(crc) = ((crc >> 15) | (crc << 17)) + 0xa282ead8. The mask
// exists because a CRC of bytes that themselves hold CRCs is weak; readers
// (TensorBoard's included) reject a record whose checksums do not match.
// The first record of a file carries file_version "brain.Event:2"; every
// later one a Summary of scalars at one step.
#ifndef PIPETRAIN_CORE_IO_EVENT_FILE_WRITER_H_
#define PIPETRAIN_CORE_IO_EVENT_FILE_WRITER_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace pipetrain {

// The TFRecord checksum of `size` bytes at `data`: CRC-32C, rotated right by
// 15 bits, plus 0xa282ead8 (mod 2^32).
uint32_t MaskedCrc32c(const void* data, size_t size);

// `data` framed as one TFRecord (length, its masked CRC, data, its masked CRC).
std::string FrameTfRecord(const std::string& data);

// A tag and its value; TensorBoard stores the value as a 32-bit float.
using ScalarList = std::vector<std::pair<std::string, double>>;

// Appends Events to one new event file. Not thread-safe.
class EventFileWriter {
 public:
  // Creates `dir` (and its parents) when missing and a new file in it named
  // events.out.tfevents.<unix seconds>.<hostname> (TensorBoard loads every
  // file whose name contains "tfevents"); a name already taken, as by a
  // second writer within the same second, gets a ".1", ".2", ... suffix.
  // Writes and flushes the file_version record. Errors name the file.
  static absl::StatusOr<std::unique_ptr<EventFileWriter>> Open(const std::string& dir);

  EventFileWriter(const EventFileWriter&) = delete;
  EventFileWriter& operator=(const EventFileWriter&) = delete;
  // Flushes what is pending (an error is lost here: call Flush to see it).
  ~EventFileWriter();

  // Queues one Event at `step`, wall time now, holding one Summary with a
  // value per scalar, in the given order. Nothing reaches the file before
  // Flush (or destruction).
  absl::Status AddScalars(int64_t step, const ScalarList& scalars);
  // Writes every queued record to the file (not fsynced: TensorBoard reads
  // the page cache, and a lost tail after a crash costs only curve points).
  absl::Status Flush();

  const std::string& path() const { return path_; }

 private:
  EventFileWriter(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}
  absl::Status AddEventBytes(const std::string& serialized_event);

  std::string path_;
  int fd_ = -1;
  std::string pending_;   // framed records not yet written
  absl::Status failure_;  // the first write error; every later call returns it
};

// The trainer's use of an EventFileWriter, where curves must never stop a
// run: the first failure (to open the file, or to write it) is logged once
// as a warning naming the file, and the log does nothing afterwards.
class BestEffortEventLog {
 public:
  // Starts a file in `dir`; an empty `dir` leaves the log off.
  void Open(const std::string& dir);
  // AddScalars then Flush, so TensorBoard sees each point as it is logged.
  void Add(int64_t step, const ScalarList& scalars);
  bool active() const { return writer_ != nullptr; }

 private:
  void Fail(const absl::Status& status);

  std::unique_ptr<EventFileWriter> writer_;
};

}  // namespace pipetrain

#endif  // PIPETRAIN_CORE_IO_EVENT_FILE_WRITER_H_
