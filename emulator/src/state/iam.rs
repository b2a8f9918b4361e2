//! IAM roles of the emulator's account: what `whim init` creates for builds (reference §G.2).
//! Nothing is enforced with them; they exist so that the calls a real account needs succeed.

use std::collections::BTreeMap;
use std::sync::Mutex;

use rand::Rng as _;

use super::clock::epoch_now;

/// One role.
#[derive(Debug, Clone)]
pub(crate) struct Role {
    /// RoleName.
    pub name: String,
    /// Path (`/` by default).
    pub path: String,
    /// `AROA…` id.
    pub id: String,
    /// The trust policy, as given.
    pub assume_role_policy: String,
    /// Optional description.
    pub description: Option<String>,
    /// MaxSessionDuration in seconds.
    pub max_session_secs: u32,
    /// Epoch seconds.
    pub created_at: f64,
    /// Inline policies by name.
    pub policies: BTreeMap<String, String>,
}

/// Why a role call was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RoleError {
    /// No role of that name.
    NoSuchRole,
    /// No inline policy of that name.
    NoSuchPolicy,
    /// A role of that name exists.
    Exists,
    /// The role still has inline policies (DeleteRole).
    HasPolicies,
}

/// The roles, by name.
#[derive(Debug, Default)]
pub(crate) struct RoleStore {
    roles: Mutex<BTreeMap<String, Role>>,
}

impl RoleStore {
    /// Creates a role; its name is unique.
    pub(crate) fn create(&self, name: &str, path: &str, policy: &str, description: Option<String>) -> Result<Role, RoleError> {
        let mut roles = self.lock();
        if roles.contains_key(name) {
            return Err(RoleError::Exists);
        }
        let role = Role {
            name: name.into(),
            path: path.into(),
            id: role_id(),
            assume_role_policy: policy.into(),
            description,
            max_session_secs: 3600,
            created_at: epoch_now(),
            policies: BTreeMap::new(),
        };
        roles.insert(name.into(), role.clone());
        Ok(role)
    }

    /// A role by name.
    pub(crate) fn get(&self, name: &str) -> Result<Role, RoleError> {
        self.lock().get(name).cloned().ok_or(RoleError::NoSuchRole)
    }

    /// Deletes a role (IAM refuses while inline policies remain; so does this).
    pub(crate) fn delete(&self, name: &str) -> Result<(), RoleError> {
        let mut roles = self.lock();
        match roles.get(name) {
            None => Err(RoleError::NoSuchRole),
            Some(r) if !r.policies.is_empty() => Err(RoleError::HasPolicies),
            Some(_) => {
                roles.remove(name);
                Ok(())
            }
        }
    }

    /// Adds or replaces an inline policy.
    pub(crate) fn put_policy(&self, role: &str, policy: &str, document: &str) -> Result<(), RoleError> {
        let mut roles = self.lock();
        let role = roles.get_mut(role).ok_or(RoleError::NoSuchRole)?;
        role.policies.insert(policy.into(), document.into());
        Ok(())
    }

    /// An inline policy's document.
    pub(crate) fn get_policy(&self, role: &str, policy: &str) -> Result<String, RoleError> {
        let roles = self.lock();
        let role = roles.get(role).ok_or(RoleError::NoSuchRole)?;
        role.policies.get(policy).cloned().ok_or(RoleError::NoSuchPolicy)
    }

    /// Removes an inline policy.
    pub(crate) fn delete_policy(&self, role: &str, policy: &str) -> Result<(), RoleError> {
        let mut roles = self.lock();
        let role = roles.get_mut(role).ok_or(RoleError::NoSuchRole)?;
        role.policies.remove(policy).map(|_| ()).ok_or(RoleError::NoSuchPolicy)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Role>> {
        self.roles.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// `AROA` + 17 upper-case letters and digits, like IAM's role ids.
fn role_id() -> String {
    const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut rng = rand::rng();
    let tail: String = (0..17).map(|_| char::from(CHARS[rng.random_range(0..CHARS.len())])).collect();
    format!("AROA{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_and_inline_policies() {
        let store = RoleStore::default();
        let role = store.create("b", "/", "{}", None).expect("create");
        assert!(role.id.starts_with("AROA") && role.id.len() == 21);
        assert_eq!(store.create("b", "/", "{}", None).map(|_| ()), Err(RoleError::Exists));
        assert_eq!(store.put_policy("x", "p", "{}"), Err(RoleError::NoSuchRole));
        store.put_policy("b", "p", "{\"a\":1}").expect("put");
        assert_eq!(store.get_policy("b", "p").as_deref(), Ok("{\"a\":1}"));
        assert_eq!(store.get_policy("b", "q"), Err(RoleError::NoSuchPolicy));
        assert_eq!(store.delete("b"), Err(RoleError::HasPolicies));
        store.delete_policy("b", "p").expect("delete policy");
        store.delete("b").expect("delete");
        assert_eq!(store.get("b").map(|_| ()), Err(RoleError::NoSuchRole));
    }
}
