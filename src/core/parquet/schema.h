#pragma once
// The table shapes we write and read: top-level columns that are either flat values or lists of values
// (the standard 3-level LIST: `<rep> group name (LIST) { repeated group list { <rep> type element; } }`).
#include <cstdint>
#include <string>
#include <vector>

#include "core/parquet/parquet_format.h"

namespace bkd::parquet {

struct ColumnSpec {
  std::string name;
  Type type = Type::INT32;  // BOOLEAN, INT32, INT64, FLOAT or DOUBLE
  bool list = false;        // list<type>
  bool nullable = false;    // the value (flat) or the whole list may be null
  bool element_nullable = false;  // list elements may be null (read side only; our writer writes required)
};

int value_width(Type t);  // bytes per value in memory (BOOLEAN: 1); 0 for unsupported types

// Parquet schema elements (root first) for `columns`; the writer's half of the mapping.
std::vector<SchemaElement> to_schema_elements(const std::vector<ColumnSpec>& columns);

// One leaf column: its spec and the level thresholds that decode its definition levels.
struct LeafLayout {
  ColumnSpec spec;
  int max_def = 0, max_rep = 0;
  int def_list = 0;   // list columns: def >= def_list means the list is present (not null)
  int def_elem = 0;   // list columns: def >= def_elem means an element slot exists (list not empty)
  std::vector<std::string> path;
};

// The reader's half: maps a file's schema to top-level columns. Unsupported shapes (structs, maps,
// nested lists, other physical types) throw naming the column.
std::vector<LeafLayout> layout_from_schema(const std::vector<SchemaElement>& schema, const std::string& where);

}  // namespace bkd::parquet
