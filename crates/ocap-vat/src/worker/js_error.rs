//! QuickJS errors, both ways: the message of an exception caught from JS (for death reasons
//! and logs, with its stack when it has one), and an exception thrown from a host function.

use rquickjs::{Ctx, Value};

/// Whether an error message is QuickJS running out of memory (the allocator refused).
pub(super) fn is_out_of_memory(message: &str) -> bool {
    message.contains("out of memory")
}

/// The message of `error`, taking the pending exception if it is one.
pub(super) fn describe_error(ctx: &Ctx<'_>, error: rquickjs::Error) -> String {
    if error.is_exception() {
        describe_value(&ctx.catch())
    } else {
        error.to_string()
    }
}

/// `name: message` and the stack of a thrown error; the text of anything else thrown.
pub(super) fn describe_value(value: &Value<'_>) -> String {
    if let Some(object) = value.as_object() {
        let message: Option<String> = object.get("message").ok();
        let name: Option<String> = object.get("name").ok();
        let stack: Option<String> = object.get("stack").ok();
        match (name, message) {
            (Some(name), Some(message)) => {
                let mut s = format!("{name}: {message}");
                if let Some(stack) = stack {
                    s.push('\n');
                    s.push_str(&stack);
                }
                s
            }
            (None, Some(message)) => message,
            _ => "[object]".into(),
        }
    } else if let Some(s) = value.as_string() {
        s.to_string().unwrap_or_default()
    } else {
        format!("{value:?}")
    }
}

/// Throws a JS `Error` with `message` from a host function.
pub(super) fn throw(ctx: &Ctx<'_>, message: &str) -> rquickjs::Error {
    rquickjs::Exception::throw_message(ctx, message)
}
