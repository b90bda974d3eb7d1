//! The cache contract against the in-process cache.

use auth_cache_memory::MemoryCache;
use auth_testkit::contract::Fixture;

auth_testkit::cache_contract_tests!(Some(Fixture::new(MemoryCache::new())));
