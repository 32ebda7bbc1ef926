// libFuzzer entry point: any byte string given to the Parquet reader must end in a clean read or a
// bkd::Error — never a crash, an out-of-bounds access (ASan), undefined behaviour (UBSan) or a hang.
#include <cstddef>
#include <cstdint>

#include "core/parquet/reader.h"
#include "core/util/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  bkd::parquet::ReaderLimits limits;  // small limits keep a hostile header from asking for gigabytes
  limits.max_page_bytes = 4 << 20;
  limits.max_values_per_page = 1 << 20;
  limits.max_values_per_chunk = 1 << 22;
  try {
    bkd::parquet::ParquetReader reader(data, size, "fuzz.parquet", limits);
    bkd::parquet::RowGroupData group;
    for (int g = 0; g < reader.num_row_groups(); ++g) reader.read_row_group(g, group);
  } catch (const bkd::Error&) {
  }
  return 0;
}
