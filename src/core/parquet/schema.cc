#include "core/parquet/schema.h"

#include "core/util/error.h"

namespace bkd::parquet {

int value_width(Type t) {
  switch (t) {
    case Type::BOOLEAN: return 1;
    case Type::INT32:
    case Type::FLOAT: return 4;
    case Type::INT64:
    case Type::DOUBLE: return 8;
    default: return 0;
  }
}

std::vector<SchemaElement> to_schema_elements(const std::vector<ColumnSpec>& columns) {
  std::vector<SchemaElement> out;
  SchemaElement root;
  root.name = "schema";
  root.num_children = static_cast<int32_t>(columns.size());
  out.push_back(root);
  for (const auto& c : columns) {
    if (value_width(c.type) == 0) throw Error("column '" + c.name + "': unsupported type " + type_name(c.type));
    Repetition rep = c.nullable ? Repetition::OPTIONAL : Repetition::REQUIRED;
    if (!c.list) {
      SchemaElement e;
      e.type = c.type, e.repetition = rep, e.name = c.name;
      out.push_back(e);
      continue;
    }
    SchemaElement outer, middle, leaf;
    outer.name = c.name, outer.repetition = rep, outer.num_children = 1;
    outer.converted_type = kConvertedList, outer.logical_list = true;
    middle.name = "list", middle.repetition = Repetition::REPEATED, middle.num_children = 1;
    leaf.name = "element", leaf.type = c.type;
    leaf.repetition = c.element_nullable ? Repetition::OPTIONAL : Repetition::REQUIRED;
    out.push_back(outer), out.push_back(middle), out.push_back(leaf);
  }
  return out;
}

namespace {

struct SchemaWalker {
  const std::vector<SchemaElement>& s;
  const std::string& where;
  size_t i = 1;

  [[noreturn]] void fail(const std::string& what) {
    throw Error(where + ": schema: " + what, "only flat columns and lists of BOOLEAN/INT32/INT64/FLOAT/DOUBLE are supported");
  }
  const SchemaElement& next() {
    if (i >= s.size()) fail("fewer schema elements than num_children says");
    return s[i++];
  }
  Repetition rep(const SchemaElement& e) {
    if (!e.repetition) fail("element '" + e.name + "' has no repetition type");
    return *e.repetition;
  }
  void check_leaf(const SchemaElement& e, const std::string& col) {
    if (e.num_children != 0 || !e.type) fail("column '" + col + "' is nested more deeply than a list");
    if (value_width(*e.type) == 0) fail("column '" + col + "' has unsupported type " + type_name(*e.type));
  }

  LeafLayout column() {
    const SchemaElement& e = next();
    LeafLayout l;
    l.spec.name = e.name;
    Repetition r = rep(e);
    if (e.num_children == 0) {
      check_leaf(e, e.name);
      l.spec.type = *e.type;
      l.path = {e.name};
      if (r == Repetition::REPEATED) {  // bare repeated field: a list of required values
        l.spec.list = true;
        l.max_rep = 1, l.max_def = 1, l.def_list = 0, l.def_elem = 1;
      } else {
        l.spec.nullable = r == Repetition::OPTIONAL;
        l.max_def = l.spec.nullable ? 1 : 0;
      }
      return l;
    }
    if (r == Repetition::REPEATED) fail("column '" + e.name + "': repeated groups are not supported");
    if (e.num_children != 1) fail("column '" + e.name + "': structs are not supported");
    const SchemaElement& mid = next();
    if (rep(mid) != Repetition::REPEATED) fail("column '" + e.name + "': group is not a LIST");
    l.spec.list = true;
    l.spec.nullable = r == Repetition::OPTIONAL;
    l.def_list = l.spec.nullable ? 1 : 0;
    l.def_elem = l.def_list + 1;
    l.max_rep = 1;
    if (mid.num_children == 0) {  // 2-level list: repeated primitive
      check_leaf(mid, e.name);
      l.spec.type = *mid.type;
      l.max_def = l.def_elem;
      l.path = {e.name, mid.name};
      return l;
    }
    if (mid.num_children != 1) fail("column '" + e.name + "': list of structs is not supported");
    const SchemaElement& leaf = next();
    check_leaf(leaf, e.name);
    Repetition lr = rep(leaf);
    if (lr == Repetition::REPEATED) fail("column '" + e.name + "': nested lists are not supported");
    l.spec.type = *leaf.type;
    l.spec.element_nullable = lr == Repetition::OPTIONAL;
    l.max_def = l.def_elem + (l.spec.element_nullable ? 1 : 0);
    l.path = {e.name, mid.name, leaf.name};
    return l;
  }
};

}  // namespace

std::vector<LeafLayout> layout_from_schema(const std::vector<SchemaElement>& schema, const std::string& where) {
  if (schema.empty()) throw Error(where + ": schema is empty", "the file is damaged; re-create it");
  SchemaWalker w{schema, where};
  std::vector<LeafLayout> out;
  int32_t n = schema[0].num_children;
  if (n < 0 || static_cast<size_t>(n) >= schema.size() + 1) w.fail("root num_children is out of range");
  for (int32_t c = 0; c < n; ++c) out.push_back(w.column());
  if (w.i != schema.size()) w.fail("schema has elements beyond the root's children");
  return out;
}

}  // namespace bkd::parquet
