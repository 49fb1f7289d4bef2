//! Source rewrites applied to every module before bundling.

use swc_ecma_ast::{Callee, Expr, Lit, MemberProp, Module, Str};
use swc_ecma_visit::{Visit, VisitMut, VisitMutWith, VisitWith};

/// `import('literal')` → `Promise.resolve({})`, `process.env.NODE_ENV` →
/// `"production"`. Records whether a computed `import(x)` remains.
#[derive(Default)]
pub(crate) struct VatTransforms {
    pub(crate) computed_dynamic_import: bool,
}

impl VisitMut for VatTransforms {
    fn visit_mut_expr(&mut self, expr: &mut Expr) {
        expr.visit_mut_children_with(self);
        if is_process_env_node_env(expr) {
            *expr = Expr::Lit(Lit::Str(Str::from("production")));
            return;
        }
        if let Expr::Call(call) = expr {
            if matches!(call.callee, Callee::Import(_)) {
                let literal = call.args.len() == 1
                    && call.args[0].spread.is_none()
                    && matches!(&*call.args[0].expr, Expr::Lit(Lit::Str(_)) | Expr::Tpl(_));
                let literal = literal
                    && match &*call.args[0].expr {
                        Expr::Tpl(tpl) => tpl.exprs.is_empty(),
                        _ => true,
                    };
                if literal {
                    *expr = promise_resolve_empty();
                } else {
                    self.computed_dynamic_import = true;
                }
            }
        }
    }
}

fn promise_resolve_empty() -> Expr {
    use swc_ecma_ast::{CallExpr, ExprOrSpread, Ident, IdentName, MemberExpr, ObjectLit};
    let callee = MemberExpr {
        span: Default::default(),
        obj: Box::new(Expr::Ident(Ident::new_no_ctxt("Promise".into(), Default::default()))),
        prop: MemberProp::Ident(IdentName::new("resolve".into(), Default::default())),
    };
    Expr::Call(CallExpr {
        callee: Callee::Expr(Box::new(Expr::Member(callee))),
        args: vec![ExprOrSpread { spread: None, expr: Box::new(Expr::Object(ObjectLit::default())) }],
        ..Default::default()
    })
}

fn member_name(prop: &MemberProp) -> Option<&str> {
    match prop {
        MemberProp::Ident(i) => Some(&i.sym),
        MemberProp::Computed(c) => match &*c.expr {
            Expr::Lit(Lit::Str(s)) => s.value.as_str(),
            _ => None,
        },
        _ => None,
    }
}

fn is_process_env_node_env(expr: &Expr) -> bool {
    let Expr::Member(outer) = expr else { return false };
    if member_name(&outer.prop) != Some("NODE_ENV") {
        return false;
    }
    let Expr::Member(inner) = &*outer.obj else { return false };
    if member_name(&inner.prop) != Some("env") {
        return false;
    }
    matches!(&*inner.obj, Expr::Ident(i) if &*i.sym == "process")
}

/// A module with no import/export that assigns `module.exports`/`exports.x`
/// or calls `require(...)`.
pub(crate) fn looks_like_commonjs(module: &Module) -> bool {
    struct Finder(bool);
    impl Visit for Finder {
        fn visit_expr(&mut self, expr: &Expr) {
            match expr {
                Expr::Ident(i) if &*i.sym == "module" || &*i.sym == "exports" || &*i.sym == "require" => self.0 = true,
                _ => expr.visit_children_with(self),
            }
        }
    }
    let mut finder = Finder(false);
    module.visit_with(&mut finder);
    finder.0
}
