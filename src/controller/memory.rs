//! Giving freed memory back to the operating system after a reconcile.
//!
//! A reconcile of a large repository allocates a lot at once (the bundle's files, the parsed
//! documents, the objects to apply, their JSON) and frees it all at the end. glibc's allocator
//! keeps much of that in its per-thread arenas, so the controller's RSS stays near the peak of
//! the largest reconcile for good, and grows a little more with each one.

/// Return the free pages of every allocator arena to the operating system (glibc only; other
/// C libraries are left as they are).
#[allow(unsafe_code)]
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        unsafe extern "C" {
            fn malloc_trim(pad: usize) -> i32;
        }
        // SAFETY: malloc_trim only walks the allocator's own free lists; it takes no pointers
        // and is safe to call from any thread at any time.
        unsafe {
            malloc_trim(0);
        }
    }
}
