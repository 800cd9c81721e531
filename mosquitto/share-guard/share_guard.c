/* share_guard: a Mosquitto 2.0 plugin that refuses shared subscriptions ($share/...)
 * to every client but the cloud bridges (certificate CN "@bridge/<name>").
 *
 * Why hand-written: Mosquitto 2.0's acl_file never checks SUBSCRIBE (it only filters on
 * delivery), and inside a shared group the broker hands each message to one member and
 * drops it if that member may not read it. So a device in the bridges' group would make
 * the bridges miss its share of every tenant's events. The dynamic-security plugin of 2.0
 * can refuse subscriptions, but only for clients it knows by username (no %u patterns),
 * so every device would have to be registered in it on enrolment, and it keeps global
 * state that cannot be loaded once per listener (per_listener_settings true).
 * See docs/security.md "Shared subscriptions are for bridges only".
 *
 * Load it in every tenant listener, before its acl_file is consulted:
 *     plugin /usr/local/lib/edge-suite/share_guard.so
 * Everything that is not a $share subscription is deferred to the listener's acl_file.
 */
#include <string.h>

#include <mosquitto.h>
#include <mosquitto_broker.h>
#include <mosquitto_plugin.h>

#define BRIDGE_PREFIX "@bridge/"

int mosquitto_plugin_version(int supported_version_count, const int *supported_versions)
{
	int i;
	for(i = 0; i < supported_version_count; i++){
		if(supported_versions[i] == 5) return 5;
	}
	return -1;
}

static int is_shared(const char *filter)
{
	/* "$share" as the first topic level (mosquitto tokenises on '/') */
	return filter && strncmp(filter, "$share", 6) == 0 && (filter[6] == '/' || filter[6] == '\0');
}

static int acl_check(int event, void *event_data, void *userdata)
{
	struct mosquitto_evt_acl_check *ed = event_data;
	const char *username;
	(void)event;
	(void)userdata;

	if(ed->access != MOSQ_ACL_SUBSCRIBE || !is_shared(ed->topic)){
		return MOSQ_ERR_PLUGIN_DEFER;
	}
	username = mosquitto_client_username(ed->client);
	if(username && strncmp(username, BRIDGE_PREFIX, strlen(BRIDGE_PREFIX)) == 0){
		return MOSQ_ERR_PLUGIN_DEFER; /* the acl_file decides, as for any subscription */
	}
	mosquitto_log_printf(MOSQ_LOG_NOTICE, "share_guard: refused shared subscription of %s",
			mosquitto_client_id(ed->client));
	return MOSQ_ERR_ACL_DENIED;
}

int mosquitto_plugin_init(mosquitto_plugin_id_t *identifier, void **user_data,
		struct mosquitto_opt *options, int option_count)
{
	(void)options;
	(void)option_count;
	*user_data = identifier; /* one init per listener: remember which, for cleanup */
	return mosquitto_callback_register(identifier, MOSQ_EVT_ACL_CHECK, acl_check, NULL, NULL);
}

int mosquitto_plugin_cleanup(void *user_data, struct mosquitto_opt *options, int option_count)
{
	(void)options;
	(void)option_count;
	return mosquitto_callback_unregister(user_data, MOSQ_EVT_ACL_CHECK, acl_check, NULL);
}
