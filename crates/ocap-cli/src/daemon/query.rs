//! `executeDBQuery`: read-only SQL against the kernel database (§8.7: the JS daemon runs any
//! SQL, writes included). Each query gets its own connection, opened read-only with
//! `query_only` set, and a statement that would write is refused before it runs. Queries
//! are bounded in rows and time.

use std::path::Path;
use std::time::Duration;

use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags};
use serde_json::{Map, Value as Json};

use crate::rpc::{codes, RpcError};

/// Rows a query may return.
pub const MAX_QUERY_ROWS: usize = 10_000;
/// Time a query may run before it is interrupted.
pub const QUERY_TIMEOUT_SECS: u64 = 10;

fn failed(e: impl std::fmt::Display) -> RpcError {
    RpcError::new(codes::INTERNAL_ERROR, format!("query failed: {e}"))
}

/// Runs `sql` and returns its rows as objects of column name to value (text and numbers as
/// strings, as the JS kernel's result type says; NULL as null; blobs as lowercase hex).
pub fn execute(db: &Path, sql: &str) -> Result<Json, RpcError> {
    let conn = Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)
        .map_err(failed)?;
    conn.pragma_update(None, "query_only", true).map_err(failed)?;
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
    let result = collect_rows(&mut stmt, &names);
    let _ = done_tx.send(());
    let _ = timer.join();
    result
}

fn collect_rows(stmt: &mut rusqlite::Statement<'_>, names: &[String]) -> Result<Json, RpcError> {
    let mut rows = stmt.query([]).map_err(failed)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(failed)? {
        if out.len() == MAX_QUERY_ROWS {
            return Err(RpcError::new(
                codes::INTERNAL_ERROR,
                format!("query returned more than {MAX_QUERY_ROWS} rows; add a LIMIT"),
            ));
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
            obj.insert(name.clone(), v);
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
        let rows = execute(&db, "SELECT key, value, 2 AS n FROM kv ORDER BY key").unwrap();
        assert_eq!(rows, serde_json::json!([{"key":"a","value":"1","n":"2"},{"key":"b","value":null,"n":"2"}]));
        for sql in ["DELETE FROM kv", "INSERT INTO kv VALUES ('c','3')", "DROP TABLE kv", "VACUUM"] {
            let e = execute(&db, sql).unwrap_err();
            assert_eq!(e.code, codes::INVALID_PARAMS, "{sql}: {e}");
        }
        assert_eq!(execute(&db, "SELECT 1; DELETE FROM kv").unwrap_err().code, codes::INVALID_PARAMS);
        let n: i64 = c.query_row("SELECT count(*) FROM kv", [], |r| r.get(0)).unwrap();
        assert_eq!(n, 2);
    }
}
