// The migrations are embedded by `sqlx::migrate!`, which cannot tell cargo to watch their
// directory on a stable compiler: a new migration would otherwise be missed by a build that
// finds nothing else changed.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
