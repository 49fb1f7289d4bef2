//! `executeDBQuery`: read-only SQL against the kernel database (§8.7: the JS daemon runs any
//! SQL, writes included). Each query gets its own connection, opened read-only with
//! `query_only` set, and a statement that would write is refused before it runs.
//!
//! Every answer is bounded (issue 11 item 3: a 113-byte query used to grow the daemon to
//! 1.5 GB): at most `max_rows` rows and `max_bytes` bytes of values, and no single value
//! longer than `max_bytes` (SQLite's own length limit on this connection, so an enormous
//! string or blob is refused while it is being made, not after). Rows are read one at a time
//! and the query stops at the first row over a limit. A query that hits a limit answers
//! `{"rows": [...], "truncated": true, "limit": "..."}` with the rows that fit; one that
//! does not answers the plain array of rows, as the JS kernel does. Queries are also
//! bounded in time (`QUERY_TIMEOUT_SECS`).

use std::path::Path;
use std::time::Duration;

use rusqlite::limits::Limit;
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags};
use serde_json::{json, Map, Value as Json};

use crate::rpc::{codes, RpcError};

/// Rows a query may return (the default of the daemon's `maxQueryRows`).
pub const MAX_QUERY_ROWS: usize = 10_000;
/// Bytes of values a query may return (the default of the daemon's `maxQueryBytes`).
pub const MAX_QUERY_BYTES: usize = 16 * 1024 * 1024;
/// Time a query may run before it is interrupted.
pub const QUERY_TIMEOUT_SECS: u64 = 10;

/// The bounds of one answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueryLimits {
    pub max_rows: usize,
    pub max_bytes: usize,
}

impl Default for QueryLimits {
    fn default() -> Self {
        QueryLimits { max_rows: MAX_QUERY_ROWS, max_bytes: MAX_QUERY_BYTES }
    }
}

fn failed(e: impl std::fmt::Display) -> RpcError {
    RpcError::new(codes::INTERNAL_ERROR, format!("query failed: {e}"))
}

/// Runs `sql` and returns its rows as objects of column name to value (text and numbers as
/// strings, as the JS kernel's result type says; NULL as null; blobs as lowercase hex).
///
/// Errors: empty SQL, SQL that does not parse, a statement that would write, a value longer
/// than `max_bytes`: `INVALID_PARAMS`; a failure while running: `INTERNAL_ERROR`.
pub fn execute(db: &Path, sql: &str, limits: QueryLimits) -> Result<Json, RpcError> {
    if sql.trim().is_empty() {
        return Err(RpcError::invalid_params("executeDBQuery needs a non-empty sql"));
    }
    let conn = Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)
        .map_err(failed)?;
    conn.pragma_update(None, "query_only", true).map_err(failed)?;
    // Hex doubles a blob: cap the raw length so its text fits too.
    let max_len = i32::try_from(limits.max_bytes / 2).unwrap_or(i32::MAX).max(1);
    conn.set_limit(Limit::SQLITE_LIMIT_LENGTH, max_len).map_err(failed)?;
    let mut stmt = conn.prepare(sql).map_err(|e| RpcError::invalid_params(format!("bad SQL: {e}")))?;
    if !stmt.readonly() {
        return Err(RpcError::invalid_params("executeDBQuery is read-only: the statement would write"));
    }
    let names: Vec<String> = stmt.column_names().map(str::to_owned).collect();
    // Interrupt the query if it runs too long; the timer is told to stop when we are done.
    let interrupt = conn.get_interrupt_handle();
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let timer = std::thread::spawn(move || {
        if let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
            done_rx.recv_timeout(Duration::from_secs(QUERY_TIMEOUT_SECS))
        {
            interrupt.interrupt();
        }
    });
    let result = collect_rows(&mut stmt, &names, limits);
    let _ = done_tx.send(());
    let _ = timer.join();
    result
}

fn collect_rows(stmt: &mut rusqlite::Statement<'_>, names: &[String], limits: QueryLimits) -> Result<Json, RpcError> {
    let too_big = |e: rusqlite::Error| match e {
        rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::TooBig => {
            RpcError::invalid_params(format!(
                "a value of the query is longer than the answer may be ({} bytes, maxQueryBytes)",
                limits.max_bytes
            ))
        }
        e => failed(e),
    };
    let mut rows = stmt.query([]).map_err(too_big)?;
    let mut out = Vec::new();
    let mut bytes = 0usize;
    let truncated = |out: Vec<Json>, limit: String| Ok(json!({"rows": out, "truncated": true, "limit": limit}));
    while let Some(row) = rows.next().map_err(too_big)? {
        if out.len() == limits.max_rows {
            return truncated(out, format!("{} rows (maxQueryRows)", limits.max_rows));
        }
        let mut obj = Map::new();
        for (i, name) in names.iter().enumerate() {
            let v = match row.get_ref(i).map_err(failed)? {
                ValueRef::Null => Json::Null,
                ValueRef::Integer(n) => Json::String(n.to_string()),
                ValueRef::Real(x) => Json::String(x.to_string()),
                ValueRef::Text(t) => Json::String(String::from_utf8_lossy(t).into_owned()),
                ValueRef::Blob(b) => Json::String(b.iter().map(|x| format!("{x:02x}")).collect()),
            };
            bytes += name.len() + v.as_str().map_or(4, str::len);
            obj.insert(name.clone(), v);
        }
        if bytes > limits.max_bytes {
            return truncated(out, format!("{} bytes (maxQueryBytes)", limits.max_bytes));
        }
        out.push(Json::Object(obj));
    }
    Ok(Json::Array(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_and_refuses_writes() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("k.sqlite");
        let c = Connection::open(&db).unwrap();
        c.execute_batch("CREATE TABLE kv(key TEXT, value TEXT); INSERT INTO kv VALUES ('a', '1'), ('b', NULL);")
            .unwrap();
        let rows = execute(&db, "SELECT key, value, 2 AS n FROM kv ORDER BY key", QueryLimits::default()).unwrap();
        assert_eq!(rows, serde_json::json!([{"key":"a","value":"1","n":"2"},{"key":"b","value":null,"n":"2"}]));
        for sql in ["DELETE FROM kv", "INSERT INTO kv VALUES ('c','3')", "DROP TABLE kv", "VACUUM"] {
            let e = execute(&db, sql, QueryLimits::default()).unwrap_err();
            assert_eq!(e.code, codes::INVALID_PARAMS, "{sql}: {e}");
        }
        assert_eq!(
            execute(&db, "SELECT 1; DELETE FROM kv", QueryLimits::default()).unwrap_err().code,
            codes::INVALID_PARAMS
        );
        let n: i64 = c.query_row("SELECT count(*) FROM kv", [], |r| r.get(0)).unwrap();
        assert_eq!(n, 2);
    }

    /// Issue 11 item 3: every answer is bounded, and says when it was cut.
    #[test]
    fn answers_are_bounded_in_rows_and_bytes_and_say_so() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("k.sqlite");
        Connection::open(&db).unwrap().execute_batch("CREATE TABLE t(x);").unwrap();
        let small = QueryLimits { max_rows: 5, max_bytes: 1000 };
        let many = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT i FROM n";
        let r = execute(&db, many, small).unwrap();
        assert_eq!(r["truncated"], json!(true));
        assert_eq!(r["rows"].as_array().unwrap().len(), 5);
        assert!(r["limit"].as_str().unwrap().contains("maxQueryRows"), "{r}");
        let wide = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) \
                    SELECT printf('%.100c', 'x') AS s FROM n LIMIT 3";
        let r = execute(&db, wide, QueryLimits { max_rows: 100, max_bytes: 250 }).unwrap();
        assert_eq!(r["truncated"], json!(true));
        assert_eq!(r["rows"].as_array().unwrap().len(), 2);
        // One enormous value is refused while SQLite makes it, not after.
        let e = execute(&db, "SELECT zeroblob(100000000)", QueryLimits::default()).unwrap_err();
        assert_eq!(e.code, codes::INVALID_PARAMS, "{e}");
        assert!(e.message.contains("maxQueryBytes"), "{e}");
        // Within the limits, the JS kernel's plain array.
        assert_eq!(execute(&db, "SELECT 1 AS one", small).unwrap(), json!([{"one": "1"}]));
        for sql in ["", "   ", "\n"] {
            assert_eq!(execute(&db, sql, small).unwrap_err().code, codes::INVALID_PARAMS);
        }
    }
}
