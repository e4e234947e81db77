import { declarativeId } from '../lib/uuid.js';
import { formatAt, type ConfigDocument, type DocPath } from './doc.js';
import { TABLES, TABLE_ORDER, foreignFieldTo, type ForeignField, type TableName } from './tables.js';
import { refKey } from '../lib/ref-key.js';

/** One entity of the document, wherever it sits (top level or nested), with its references resolved. */
export class Entity {
  readonly table: TableName;
  readonly id: string;
  readonly raw: Record<string, unknown>;
  /** Resolved foreign keys (ids); from nesting or from a reference field. */
  readonly refs: Partial<Record<ForeignField, string>> = {};
  /** The foreign field implied by where the entity is nested (not written in the entity itself). */
  readonly nestedUnder: ForeignField | undefined;
  private readonly parent: Entity | undefined;
  private readonly key: string;
  private readonly index: number;

  constructor(table: TableName, id: string, raw: Record<string, unknown>, parent: Entity | undefined, key: string, index: number, nestedUnder: ForeignField | undefined) {
    this.table = table;
    this.id = id;
    this.raw = raw;
    this.parent = parent;
    this.key = key;
    this.index = index;
    this.nestedUnder = nestedUnder;
  }

  /** Where it sits in the document, e.g. ["services", 3, "routes", 1] (built when asked). */
  get path(): DocPath {
    return this.parent ? [...this.parent.path, this.key, this.index] : [this.key, this.index];
  }
}


const EMPTY: readonly Entity[] = Object.freeze([]);

/**
 * Every entity of one document version by table, id and endpoint key. Built once per document
 * object (documents are never mutated) and only read.
 */
export class DocIndex {
  readonly doc: ConfigDocument;
  private readonly lists = new Map<TableName, Entity[]>();
  private readonly ids = new Map<TableName, Map<string, Entity>>();
  private readonly keys = new Map<TableName, Map<string, Entity>>();
  private childLists: Map<string, Entity[]> | undefined;
  private sorted = new Map<TableName, Entity[]>();

  constructor(doc: ConfigDocument) {
    this.doc = doc;
    for (const t of TABLE_ORDER) {
      this.lists.set(t, []);
      this.ids.set(t, new Map());
      this.keys.set(t, new Map());
    }
    for (const t of TABLE_ORDER) {
      const list = doc[t];
      if (Array.isArray(list)) for (let i = 0; i < list.length; i++) this.visit(t, t, i, list[i], undefined);
    }
    this.resolve();
  }

  private visit(table: TableName, key: string, index: number, raw: unknown, parent: Entity | undefined): void {
    if (!raw || typeof raw !== 'object' || Array.isArray(raw)) return;
    const r = raw as Record<string, unknown>;
    const spec = TABLES[table];
    const keyValue = spec.endpointKey ? r[spec.endpointKey] : undefined;
    const nestedUnder = parent ? foreignFieldTo(table, parent.table) : undefined;
    // Documents the admin API manages have every id written; a derived id is a fallback only.
    const id = typeof r.id === 'string' ? r.id : declarativeId(table, typeof keyValue === 'string' ? keyValue : formatAt(parent ? [...parent.path, key, index] : [key, index]));
    const e = new Entity(table, id, r, parent, key, index, nestedUnder);
    if (parent && nestedUnder) e.refs[nestedUnder] = parent.id;
    this.lists.get(table)!.push(e);
    this.ids.get(table)!.set(id, e);
    if (typeof keyValue === 'string' && !spec.uniqueWithin) this.keys.get(table)!.set(keyValue, e);
    if (table === 'consumers' && typeof r.custom_id === 'string' && !this.keys.get(table)!.has(r.custom_id)) {
      // Credentials and plugins may name a consumer by custom_id too (as normalizeConfig resolves them).
      this.keys.get(table)!.set(`\u0000custom:${r.custom_id}`, e);
    }
    for (const [k, child] of Object.entries(spec.nested)) {
      const list = r[k];
      if (Array.isArray(list)) for (let j = 0; j < list.length; j++) this.visit(child!, k, j, list[j], e);
    }
  }

  /** Resolves explicit reference fields (by id or name) once every entity is known. */
  private resolve(): void {
    for (const t of TABLE_ORDER) {
      for (const e of this.lists.get(t)!) {
        for (const fk of TABLES[t].foreign) {
          if (e.nestedUnder === fk.field && e.raw[fk.field] === undefined) continue;
          const key = refKey(e.raw[fk.field]);
          if (key === undefined) continue;
          const parent = this.find(fk.table, key);
          if (parent) e.refs[fk.field] = parent.id;
        }
      }
    }
  }

  list(table: TableName): readonly Entity[] {
    return this.lists.get(table) ?? EMPTY;
  }

  /** The table's entities ordered by id (the pagination order, stable across changes). */
  sortedList(table: TableName): readonly Entity[] {
    let s = this.sorted.get(table);
    if (!s) {
      s = [...this.list(table)].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
      this.sorted.set(table, s);
    }
    return s;
  }

  byId(table: TableName, id: string): Entity | undefined {
    return this.ids.get(table)?.get(id);
  }

  /** By id, then by endpoint key (and a consumer by custom_id). */
  find(table: TableName, idOrKey: string): Entity | undefined {
    return this.byId(table, idOrKey) ?? this.keys.get(table)?.get(idOrKey) ?? (table === 'consumers' ? this.keys.get(table)?.get(`\u0000custom:${idOrKey}`) : undefined);
  }

  /** Entities of `table` whose `field` refers to `parentId`. */
  children(table: TableName, field: ForeignField, parentId: string): readonly Entity[] {
    if (!this.childLists) {
      this.childLists = new Map();
      for (const t of TABLE_ORDER) {
        for (const e of this.lists.get(t)!) {
          for (const [f, id] of Object.entries(e.refs)) {
            const k = `${t}\u0000${f}\u0000${id}`;
            let l = this.childLists.get(k);
            if (!l) this.childLists.set(k, (l = []));
            l.push(e);
          }
        }
      }
    }
    return this.childLists.get(`${table}\u0000${field}\u0000${parentId}`) ?? EMPTY;
  }

  /** An entity within a parent: by id, or by endpoint key among the parent's children. */
  findWithin(table: TableName, idOrKey: string, field: ForeignField, parentId: string): Entity | undefined {
    const byId = this.byId(table, idOrKey);
    if (byId) return byId.refs[field] === parentId ? byId : undefined;
    const key = TABLES[table].endpointKey;
    if (!key) return undefined;
    return this.children(table, field, parentId).find((e) => e.raw[key] === idOrKey);
  }
}

const indexes = new WeakMap<ConfigDocument, DocIndex>();

/** The index of a document, built on first use. */
export function indexOf(doc: ConfigDocument): DocIndex {
  let i = indexes.get(doc);
  if (!i) {
    i = new DocIndex(doc);
    indexes.set(doc, i);
  }
  return i;
}
