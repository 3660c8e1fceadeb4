"""Home Assistant's own MQTT-discovery validation rules, kept as plain data.

These are *facts* transcribed (in our own structure) from Home Assistant core's
source, so our integration tests can check the discovery documents sensorgate
publishes without installing Home Assistant.  No third-party imports.

Severity of what ``check()`` reports, in HA terms (useful when reading a failure):
  * REJECT  - HA's MQTT discovery schema raises ``vol.Invalid``: the entity is
              not created at all (missing required key, unknown device_class,
              unknown state_class, sensor unit not valid for its device class
              (HA >= 2025.7), negative/non-int suggested_display_precision,
              bad entity_category, options misuse, ...).
  * BROKEN  - schema accepts it but the sensor entity raises ValueError when it
              writes state (unit or state_class on date/enum/timestamp).
  * WARN    - HA logs a warning / repairs issue but keeps the entity
              (state_class not allowed for the device class, name == device name).
``check()`` returns all of them as problems; the prefix of each message says which.
"""

# ---------------------------------------------------------------------------
# Provenance
# ---------------------------------------------------------------------------
HA_SOURCE = (
    "home-assistant/core, read 2026-12 from the code index (no full clone was "
    "possible: the repo snapshot is > 500 MiB). Primary: "
    "homeassistant/components/sensor/const.py @3fd1a330015df2a3af1aeba46d208060a5295664 "
    "(matches homeassistant/const.py 2025.5.0b6); mqtt/device_trigger.py "
    "@5974c7760ac09b1772ea9f7d88ca5e8368c7260b; mqtt/sensor.py, mqtt/event.py, "
    "mqtt/config.py (index versions of 2024-2025). Newer additions (absolute_humidity, "
    "pm4, reactive_energy, temperature_delta, MCF, mPa, inH2O, mVA/kVA, mvar, Wh/km, "
    "m3/min, gal/h, m/min, Greek-mu units and AMBIGUOUS_UNITS) taken from the verbatim "
    "HA copy vendored in openhab/openhab-addons "
    "(bundles/org.openhab.binding.homeassistant/src/main/python/homeassistant, "
    "sensor/const.py @1570e83c, const.py @0576d08c), which tracks HA ~2025.10+. "
    "Net effect: tables describe HA ~2025.10-2025.12."
)

# The two "micro" characters.  HA's newest constants use GREEK SMALL LETTER MU
# (U+03BC).  HA <= ~2025.6 used MICRO SIGN (U+00B5) for e.g. "µg/m³" and had no
# translation.  Newer HA translates the legacy MICRO SIGN spellings to Greek mu
# (AMBIGUOUS_UNITS below) *before* validating, so MICRO SIGN is accepted by every
# version; Greek mu is accepted only by newer ones.  => emit U+00B5 for portability.
MU = "\u03bc"          # μ  (what current HA constants contain)
MICRO_SIGN = "\u00b5"  # µ  (legacy spelling, normalised by HA)

# From sensor/const.py AMBIGUOUS_UNITS (newest): legacy spelling -> HA spelling.
# mqtt/sensor.py applies this to unit_of_measurement before the device-class check.
AMBIGUOUS_UNITS = {
    MICRO_SIGN + "Sv/h": MU + "Sv/h",
    MICRO_SIGN + "S/cm": MU + "S/cm",
    MICRO_SIGN + "V": MU + "V",
    MICRO_SIGN + "g/ft\u00b3": MU + "g/ft\u00b3",
    MICRO_SIGN + "g/m\u00b3": MU + "g/m\u00b3",
    MICRO_SIGN + "mol/s\u22c5m\u00b2": MU + "mol/s\u22c5m\u00b2",
    MICRO_SIGN + "g": MU + "g",
    MICRO_SIGN + "s": MU + "s",
}

# ---------------------------------------------------------------------------
# Unit strings (homeassistant/const.py UnitOf... enums and loose constants)
# ---------------------------------------------------------------------------
_CUBED = "\u00b3"   # ³
_SQUARED = "\u00b2" # ²
PERCENTAGE = "%"
DEGREE = "\u00b0"   # °
LUX = "lx"
PPM = "ppm"
PPB = "ppb"
UG_PER_M3 = MU + "g/m" + _CUBED      # μg/m³ (HA accepts µg/m³ too, see above)
MG_PER_M3 = "mg/m" + _CUBED
G_PER_M3 = "g/m" + _CUBED

U_APPARENT_POWER = {"mVA", "VA", "kVA"}
U_POWER_ENUM = {"mW", "W", "kW", "MW", "GW", "TW", "BTU/h"}   # UnitOfPower
U_SENSOR_POWER = U_POWER_ENUM - {"BTU/h"}   # sensor 'power' does NOT allow BTU/h
U_REACTIVE_POWER = {"mvar", "var", "kvar"}
U_ENERGY = {"J", "kJ", "MJ", "GJ", "mWh", "Wh", "kWh", "MWh", "GWh", "TWh",
            "cal", "kcal", "Mcal", "Gcal"}
U_REACTIVE_ENERGY = {"varh", "kvarh"}
U_ENERGY_DISTANCE = {"kWh/100km", "Wh/km", "mi/kWh", "km/kWh"}
U_CURRENT = {"mA", "A"}
U_VOLTAGE = {MU + "V", "mV", "V", "kV", "MV"}
U_TEMPERATURE = {DEGREE + "C", DEGREE + "F", "K"}
U_DURATION = {"d", "h", "min", "s", "ms", MU + "s"}   # not w/m/y
U_LENGTH = {"mm", "cm", "m", "km", "in", "ft", "yd", "mi", "nmi"}
U_FREQUENCY = {"Hz", "kHz", "MHz", "GHz"}
U_PRESSURE = {"mPa", "Pa", "hPa", "kPa", "bar", "cbar", "mbar", "mmHg", "inHg",
              "inH\u2082O", "psi"}
U_SOUND_PRESSURE = {"dB", "dBA"}
U_VOLUME = {"ft" + _CUBED, "CCF", "MCF", "m" + _CUBED, "L", "mL", "gal", "fl. oz."}
U_VOLUME_FLOW = {"m" + _CUBED + "/h", "m" + _CUBED + "/min", "m" + _CUBED + "/s",
                 "ft" + _CUBED + "/min", "L/h", "L/min", "L/s", "gal/h", "gal/min",
                 "mL/s"}
U_AREA = {"m" + _SQUARED, "cm" + _SQUARED, "km" + _SQUARED, "mm" + _SQUARED,
          "in" + _SQUARED, "ft" + _SQUARED, "yd" + _SQUARED, "mi" + _SQUARED,
          "ac", "ha"}
U_MASS = {"g", "kg", "mg", MU + "g", "oz", "lb", "st"}
U_CONDUCTIVITY = {"S/cm", MU + "S/cm", "mS/cm"}
U_IRRADIANCE = {"W/m" + _SQUARED, "BTU/(h\u22c5ft" + _SQUARED + ")"}
U_VOLUMETRIC_FLUX = {"in/d", "in/h", "mm/d", "mm/h"}
U_PRECIPITATION_DEPTH = {"in", "mm", "cm"}
U_BLOOD_GLUCOSE = {"mg/dL", "mmol/L"}
U_SPEED = {"Beaufort", "ft/s", "in/s", "m/min", "m/s", "km/h", "kn", "mph", "mm/s"}
U_INFORMATION = {"bit", "kbit", "Mbit", "Gbit", "B", "kB", "MB", "GB", "TB", "PB",
                 "EB", "ZB", "YB", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB",
                 "YiB"}
U_DATA_RATE = {"bit/s", "kbit/s", "Mbit/s", "Gbit/s", "B/s", "kB/s", "MB/s", "GB/s",
               "KiB/s", "MiB/s", "GiB/s"}

# Sentinel: HA does not constrain the unit (monetary takes any ISO 4217 code).
ANY_UNIT = "<any>"

# ---------------------------------------------------------------------------
# Sensor device class -> allowed unit_of_measurement
# Source: homeassistant/components/sensor/const.py DEVICE_CLASS_UNITS (+ the
# non-numeric rule in sensor/__init__.py for date/enum/timestamp, which HA does
# not list in DEVICE_CLASS_UNITS but forbids any unit for).
# None in a set = "no unit" is allowed.  HA compares exact strings (after the
# AMBIGUOUS_UNITS translation); an empty/whitespace unit is dropped (= None).
# ---------------------------------------------------------------------------
SENSOR_DEVICE_CLASS_UNITS = {
    # non-numeric: unit must be absent (sensor/__init__.py raises otherwise)
    "date": {None},
    "enum": {None},
    "timestamp": {None},
    # numeric
    "absolute_humidity": {G_PER_M3, MG_PER_M3},
    "apparent_power": set(U_APPARENT_POWER),
    "aqi": {None},
    "area": set(U_AREA),
    "atmospheric_pressure": set(U_PRESSURE),
    "battery": {PERCENTAGE},
    "blood_glucose_concentration": set(U_BLOOD_GLUCOSE),
    "carbon_monoxide": {PPM, MG_PER_M3, UG_PER_M3},
    "carbon_dioxide": {PPM},
    "conductivity": set(U_CONDUCTIVITY),
    "current": set(U_CURRENT),
    "data_rate": set(U_DATA_RATE),
    "data_size": set(U_INFORMATION),
    "distance": set(U_LENGTH),
    "duration": set(U_DURATION),
    "energy": set(U_ENERGY),
    "energy_distance": set(U_ENERGY_DISTANCE),
    "energy_storage": set(U_ENERGY),
    "frequency": set(U_FREQUENCY),
    "gas": {"CCF", "ft" + _CUBED, "m" + _CUBED, "L", "MCF"},
    "humidity": {PERCENTAGE},
    "illuminance": {LUX},
    "irradiance": set(U_IRRADIANCE),
    "moisture": {PERCENTAGE},
    "monetary": {ANY_UNIT},   # not in HA's map: any currency code accepted
    "nitrogen_dioxide": {UG_PER_M3},
    "nitrogen_monoxide": {UG_PER_M3},
    "nitrous_oxide": {UG_PER_M3},
    "ozone": {UG_PER_M3},
    "ph": {None},
    "pm1": {UG_PER_M3},
    "pm10": {UG_PER_M3},
    "pm25": {UG_PER_M3},
    "pm4": {UG_PER_M3},
    "power_factor": {PERCENTAGE, None},
    "power": set(U_SENSOR_POWER),
    "precipitation": set(U_PRECIPITATION_DEPTH),
    "precipitation_intensity": set(U_VOLUMETRIC_FLUX),
    "pressure": set(U_PRESSURE),
    "reactive_energy": set(U_REACTIVE_ENERGY),
    "reactive_power": set(U_REACTIVE_POWER),
    "signal_strength": {"dB", "dBm"},
    "sound_pressure": set(U_SOUND_PRESSURE),
    "speed": U_SPEED | U_VOLUMETRIC_FLUX,
    "sulphur_dioxide": {UG_PER_M3},
    "temperature": set(U_TEMPERATURE),
    "temperature_delta": set(U_TEMPERATURE),
    "volatile_organic_compounds": {UG_PER_M3, MG_PER_M3},
    "volatile_organic_compounds_parts": {PPM, PPB},
    "voltage": set(U_VOLTAGE),
    "volume": set(U_VOLUME),
    "volume_flow_rate": set(U_VOLUME_FLOW),
    "volume_storage": set(U_VOLUME),
    "water": {"CCF", "ft" + _CUBED, "m" + _CUBED, "gal", "L", "MCF"},
    "weight": set(U_MASS),
    "wind_direction": {DEGREE},
    "wind_speed": set(U_SPEED),
}

SENSOR_NON_NUMERIC_DEVICE_CLASSES = {"date", "enum", "timestamp"}

# ---------------------------------------------------------------------------
# State classes.  Source: sensor/const.py SensorStateClass.
# ---------------------------------------------------------------------------
STATE_CLASSES = {"measurement", "measurement_angle", "total", "total_increasing"}
_ALL_SC = frozenset(STATE_CLASSES)
_M = {"measurement"}
_TOTALS = {"total", "total_increasing"}

# Source: sensor/const.py STATE_CLASS_UNITS -- a state class that pins the unit.
# mqtt/sensor.py rejects measurement_angle with any other unit (incl. none).
STATE_CLASS_UNITS = {"measurement_angle": {DEGREE}}

# Source: sensor/const.py DEVICE_CLASS_STATE_CLASSES.
# How HA uses it (sensor/__init__.py): only when both state_class and
# device_class are set AND the device class is a key of this map, and the
# state_class is not in the set, HA logs "Entity ... is using state class 'X'
# which is impossible considering device class ('Y') it is using; expected None
# or one of ..." (warning; the entity still works, long-term statistics suffer).
# A device class absent from HA's map is unconstrained; in the version read every
# sensor device class is listed, so no defaulting was needed.  An empty set means
# no state class at all is allowed (non-numeric / wind_direction-like cases).
# Entries marked (*) were not found in a source read here and follow the class's
# nearest sibling (pm1/pm10/pm25 -> pm4, humidity -> absolute_humidity).
SENSOR_DEVICE_CLASS_STATE_CLASSES = {
    "absolute_humidity": set(_M),          # (*)
    "apparent_power": set(_M),
    "aqi": set(_M),
    "area": set(_ALL_SC - {"measurement_angle"}),
    "atmospheric_pressure": set(_M),
    "battery": set(_M),
    "blood_glucose_concentration": set(_M),
    "carbon_monoxide": set(_M),
    "carbon_dioxide": set(_M),
    "conductivity": set(_M),
    "current": set(_M),
    "data_rate": set(_M),
    "data_size": set(_ALL_SC - {"measurement_angle"}),
    "date": set(),
    "distance": set(_ALL_SC - {"measurement_angle"}),
    "duration": set(_ALL_SC - {"measurement_angle"}),
    "energy": set(_TOTALS),
    "energy_distance": set(_M),
    "energy_storage": set(_M),
    "enum": set(),
    "frequency": set(_M),
    "gas": set(_TOTALS),
    "humidity": set(_M),
    "illuminance": set(_M),
    "irradiance": set(_M),
    "moisture": set(_M),
    "monetary": {"total"},
    "nitrogen_dioxide": set(_M),
    "nitrogen_monoxide": set(_M),
    "nitrous_oxide": set(_M),
    "ozone": set(_M),
    "ph": set(_M),
    "pm1": set(_M),
    "pm10": set(_M),
    "pm25": set(_M),
    "pm4": set(_M),                        # (*)
    "power_factor": set(_M),
    "power": set(_M),
    "precipitation": set(_ALL_SC - {"measurement_angle"}),
    "precipitation_intensity": set(_M),
    "pressure": set(_M),
    "reactive_energy": set(_TOTALS),
    "reactive_power": set(_M),
    "signal_strength": set(_M),
    "sound_pressure": set(_M),
    "speed": set(_M),
    "sulphur_dioxide": set(_M),
    "temperature": set(_M),
    "temperature_delta": set(_M),
    "timestamp": set(),
    "volatile_organic_compounds": set(_M),
    "volatile_organic_compounds_parts": set(_M),
    "voltage": set(_M),
    "volume": set(_TOTALS),
    "volume_flow_rate": set(_M),
    "volume_storage": set(_M),
    "water": set(_TOTALS),
    "weight": {"measurement", "total", "total_increasing"},
    "wind_direction": {"measurement_angle"},
    "wind_speed": set(_M),
}
# ("set(SensorStateClass)" in HA means every member; the members were
# measurement/total/total_increasing before measurement_angle existed, and HA's
# newest map still spells those rows as set(SensorStateClass), i.e. they also
# admit measurement_angle in HA -- but measurement_angle then demands unit "°"
# via STATE_CLASS_UNITS, which none of those classes allow, so we leave it out.)

# ---------------------------------------------------------------------------
# binary_sensor: homeassistant/components/binary_sensor/__init__.py
# BinarySensorDeviceClass
# ---------------------------------------------------------------------------
BINARY_SENSOR_DEVICE_CLASSES = {
    "battery", "battery_charging", "carbon_monoxide", "cold", "connectivity",
    "door", "garage_door", "gas", "heat", "light", "lock", "moisture", "motion",
    "moving", "occupancy", "opening", "plug", "power", "presence", "problem",
    "running", "safety", "smoke", "sound", "tamper", "update", "vibration",
    "window",
}

# ---------------------------------------------------------------------------
# event: homeassistant/components/event/__init__.py EventDeviceClass
# ---------------------------------------------------------------------------
EVENT_DEVICE_CLASSES = {"doorbell", "button", "motion"}

# ---------------------------------------------------------------------------
# number: homeassistant/components/number/const.py NumberDeviceClass.
# NumberDeviceClass is documented by HA as "aligned with SensorDeviceClass":
# the numeric sensor classes, no date/enum/timestamp.  number/const.py has its
# own DEVICE_CLASS_UNITS, but the copy read here was trimmed; we reuse the
# sensor table for those classes.  The MQTT number schema does NOT check the
# unit against the device class, so check() does not either.
# ---------------------------------------------------------------------------
NUMBER_DEVICE_CLASSES = set(SENSOR_DEVICE_CLASS_UNITS) - SENSOR_NON_NUMERIC_DEVICE_CLASSES
NUMBER_DEVICE_CLASS_UNITS = {
    dc: set(units) for dc, units in SENSOR_DEVICE_CLASS_UNITS.items()
    if dc in NUMBER_DEVICE_CLASSES
}

# switch / button device classes (SwitchDeviceClass, ButtonDeviceClass).
SWITCH_DEVICE_CLASSES = {"outlet", "switch"}
BUTTON_DEVICE_CLASSES = {"identify", "restart", "update"}

# homeassistant/const.py EntityCategory
ENTITY_CATEGORIES = {"config", "diagnostic"}

# ---------------------------------------------------------------------------
# Abbreviations: homeassistant/components/mqtt/abbreviations.py
# (core index version, plus the entries added since: cmps/o/p device discovery,
# def_ent_id, migr_discvry, sug_dsp_prc, evt_typ, ...).  Speed/white_value/
# legacy-vacuum keys that HA removed are left out.
# ---------------------------------------------------------------------------
ABBREVIATIONS = {
    "act_t": "action_topic", "act_tpl": "action_template",
    "atype": "automation_type",
    "aux_cmd_t": "aux_command_topic", "aux_stat_t": "aux_state_topic",
    "aux_stat_tpl": "aux_state_template",
    "av_tones": "available_tones",
    "avty": "availability", "avty_mode": "availability_mode",
    "avty_t": "availability_topic", "avty_tpl": "availability_template",
    "away_mode_cmd_t": "away_mode_command_topic",
    "away_mode_stat_t": "away_mode_state_topic",
    "away_mode_stat_tpl": "away_mode_state_template",
    "b_tpl": "blue_template",
    "bri_cmd_t": "brightness_command_topic", "bri_cmd_tpl": "brightness_command_template",
    "bri_scl": "brightness_scale", "bri_stat_t": "brightness_state_topic",
    "bri_tpl": "brightness_template", "bri_val_tpl": "brightness_value_template",
    "clr_temp_cmd_t": "color_temp_command_topic",
    "clr_temp_cmd_tpl": "color_temp_command_template",
    "clr_temp_k": "color_temp_kelvin",
    "clr_temp_stat_t": "color_temp_state_topic", "clr_temp_tpl": "color_temp_template",
    "clr_temp_val_tpl": "color_temp_value_template",
    "clrm": "color_mode", "clrm_stat_t": "color_mode_state_topic",
    "clrm_val_tpl": "color_mode_value_template",
    "cmd_off_tpl": "command_off_template", "cmd_on_tpl": "command_on_template",
    "cmd_t": "command_topic", "cmd_tpl": "command_template",
    "cmps": "components",
    "cod_arm_req": "code_arm_required", "cod_dis_req": "code_disarm_required",
    "cod_trig_req": "code_trigger_required",
    "cont_type": "content_type",
    "curr_temp_t": "current_temperature_topic",
    "curr_temp_tpl": "current_temperature_template",
    "def_ent_id": "default_entity_id",
    "dev": "device", "dev_cla": "device_class",
    "dir_cmd_t": "direction_command_topic", "dir_cmd_tpl": "direction_command_template",
    "dir_stat_t": "direction_state_topic", "dir_val_tpl": "direction_value_template",
    "dsp_prc": "display_precision",
    "e": "encoding", "en": "enabled_by_default",
    "ent_cat": "entity_category", "ent_pic": "entity_picture",
    "evt_typ": "event_types", "exp_aft": "expire_after",
    "fanspd_lst": "fan_speed_list",
    "flsh": "flash", "flsh_tlng": "flash_time_long", "flsh_tsht": "flash_time_short",
    "fx_cmd_t": "effect_command_topic", "fx_cmd_tpl": "effect_command_template",
    "fx_list": "effect_list", "fx_stat_t": "effect_state_topic",
    "fx_tpl": "effect_template", "fx_val_tpl": "effect_value_template",
    "fan_mode_cmd_t": "fan_mode_command_topic",
    "fan_mode_cmd_tpl": "fan_mode_command_template",
    "fan_mode_stat_t": "fan_mode_state_topic",
    "fan_mode_stat_tpl": "fan_mode_state_template",
    "frc_upd": "force_update", "g_tpl": "green_template",
    "hs_cmd_t": "hs_command_topic", "hs_cmd_tpl": "hs_command_template",
    "hs_stat_t": "hs_state_topic", "hs_val_tpl": "hs_value_template",
    "ic": "icon", "img_e": "image_encoding", "img_t": "image_topic",
    "init": "initial",
    "hum_cmd_t": "target_humidity_command_topic",
    "hum_cmd_tpl": "target_humidity_command_template",
    "hum_stat_t": "target_humidity_state_topic",
    "hum_state_tpl": "target_humidity_state_template",
    "json_attr": "json_attributes", "json_attr_t": "json_attributes_topic",
    "json_attr_tpl": "json_attributes_template",
    "l_ver_t": "latest_version_topic", "l_ver_tpl": "latest_version_template",
    "lrst_t": "last_reset_topic", "lrst_val_tpl": "last_reset_value_template",
    "max": "max", "max_hum": "max_humidity", "max_k": "max_kelvin",
    "max_mirs": "max_mireds", "max_temp": "max_temp",
    "migr_discvry": "migrate_discovery",
    "min": "min", "min_hum": "min_humidity", "min_k": "min_kelvin",
    "min_mirs": "min_mireds", "min_temp": "min_temp",
    "mode": "mode", "mode_cmd_t": "mode_command_topic",
    "mode_cmd_tpl": "mode_command_template", "mode_stat_t": "mode_state_topic",
    "mode_stat_tpl": "mode_state_template", "modes": "modes",
    "name": "name", "o": "origin",
    "obj_id": "object_id",   # deprecated by HA in favour of default_entity_id
    "off_dly": "off_delay", "on_cmd_type": "on_command_type",
    "ops": "options", "opt": "optimistic",
    "osc_cmd_t": "oscillation_command_topic", "osc_cmd_tpl": "oscillation_command_template",
    "osc_stat_t": "oscillation_state_topic", "osc_val_tpl": "oscillation_value_template",
    "p": "platform",
    "pct_cmd_t": "percentage_command_topic", "pct_cmd_tpl": "percentage_command_template",
    "pct_stat_t": "percentage_state_topic", "pct_val_tpl": "percentage_value_template",
    "pl": "payload",
    "pl_arm_away": "payload_arm_away", "pl_arm_custom_b": "payload_arm_custom_bypass",
    "pl_arm_home": "payload_arm_home", "pl_arm_nite": "payload_arm_night",
    "pl_arm_vacation": "payload_arm_vacation",
    "pl_avail": "payload_available", "pl_cln_sp": "payload_clean_spot",
    "pl_cls": "payload_close",
    "pl_dir_fwd": "payload_direction_forward", "pl_dir_rev": "payload_direction_reverse",
    "pl_disarm": "payload_disarm", "pl_home": "payload_home",
    "pl_inst": "payload_install", "pl_loc": "payload_locate", "pl_lock": "payload_lock",
    "pl_not_avail": "payload_not_available", "pl_not_home": "payload_not_home",
    "pl_off": "payload_off", "pl_on": "payload_on", "pl_open": "payload_open",
    "pl_osc_off": "payload_oscillation_off", "pl_osc_on": "payload_oscillation_on",
    "pl_paus": "payload_pause", "pl_prs": "payload_press",
    "pl_ret": "payload_return_to_base", "pl_rst": "payload_reset",
    "pl_rst_hum": "payload_reset_humidity", "pl_rst_mode": "payload_reset_mode",
    "pl_rst_pct": "payload_reset_percentage",
    "pl_rst_pr_mode": "payload_reset_preset_mode",
    "pl_stop": "payload_stop", "pl_stop_tilt": "payload_stop_tilt",
    "pl_strt": "payload_start", "pl_stpa": "payload_start_pause",
    "pl_toff": "payload_turn_off", "pl_ton": "payload_turn_on",
    "pl_trig": "payload_trigger", "pl_unlk": "payload_unlock",
    "pos": "reports_position", "pos_clsd": "position_closed",
    "pos_open": "position_open", "pos_t": "position_topic", "pos_tpl": "position_template",
    "pr_mode_cmd_t": "preset_mode_command_topic",
    "pr_mode_cmd_tpl": "preset_mode_command_template",
    "pr_mode_stat_t": "preset_mode_state_topic",
    "pr_mode_val_tpl": "preset_mode_value_template", "pr_modes": "preset_modes",
    "ptrn": "pattern", "r_tpl": "red_template",
    "rel_s": "release_summary", "rel_u": "release_url", "ret": "retain",
    "rgb_cmd_t": "rgb_command_topic", "rgb_cmd_tpl": "rgb_command_template",
    "rgb_stat_t": "rgb_state_topic", "rgb_val_tpl": "rgb_value_template",
    "rgbw_cmd_t": "rgbw_command_topic", "rgbw_cmd_tpl": "rgbw_command_template",
    "rgbw_stat_t": "rgbw_state_topic", "rgbw_val_tpl": "rgbw_value_template",
    "rgbww_cmd_t": "rgbww_command_topic", "rgbww_cmd_tpl": "rgbww_command_template",
    "rgbww_stat_t": "rgbww_state_topic", "rgbww_val_tpl": "rgbww_value_template",
    "send_cmd_t": "send_command_topic", "send_if_off": "send_if_off",
    "set_fan_spd_t": "set_fan_speed_topic",
    "set_pos_t": "set_position_topic", "set_pos_tpl": "set_position_template",
    "spd_rng_min": "speed_range_min", "spd_rng_max": "speed_range_max",
    "src_type": "source_type",
    "stat_cla": "state_class", "stat_closing": "state_closing",
    "stat_clsd": "state_closed", "stat_jam": "state_jammed",
    "stat_locked": "state_locked", "stat_locking": "state_locking",
    "stat_off": "state_off", "stat_on": "state_on", "stat_open": "state_open",
    "stat_opening": "state_opening", "stat_stopped": "state_stopped",
    "stat_unlocked": "state_unlocked", "stat_unlocking": "state_unlocking",
    "stat_t": "state_topic", "stat_tpl": "state_template",
    "stat_val_tpl": "state_value_template",
    "step": "step", "stype": "subtype",
    "sug_dsp_prc": "suggested_display_precision",
    "sup_clrm": "supported_color_modes", "sup_dur": "support_duration",
    "sup_vol": "support_volume_set", "sup_feat": "supported_features",
    "swing_mode_cmd_t": "swing_mode_command_topic",
    "swing_mode_cmd_tpl": "swing_mode_command_template",
    "swing_mode_stat_t": "swing_mode_state_topic",
    "swing_mode_stat_tpl": "swing_mode_state_template",
    "t": "topic",
    "temp_cmd_t": "temperature_command_topic", "temp_cmd_tpl": "temperature_command_template",
    "temp_hi_cmd_t": "temperature_high_command_topic",
    "temp_hi_cmd_tpl": "temperature_high_command_template",
    "temp_hi_stat_t": "temperature_high_state_topic",
    "temp_hi_stat_tpl": "temperature_high_state_template",
    "temp_lo_cmd_t": "temperature_low_command_topic",
    "temp_lo_cmd_tpl": "temperature_low_command_template",
    "temp_lo_stat_t": "temperature_low_state_topic",
    "temp_lo_stat_tpl": "temperature_low_state_template",
    "temp_stat_t": "temperature_state_topic", "temp_stat_tpl": "temperature_state_template",
    "temp_unit": "temperature_unit",
    "tilt_clsd_val": "tilt_closed_value", "tilt_cmd_t": "tilt_command_topic",
    "tilt_cmd_tpl": "tilt_command_template", "tilt_max": "tilt_max", "tilt_min": "tilt_min",
    "tilt_opnd_val": "tilt_opened_value", "tilt_opt": "tilt_optimistic",
    "tilt_status_t": "tilt_status_topic", "tilt_status_tpl": "tilt_status_template",
    "tit": "title", "trns": "transition",
    "uniq_id": "unique_id", "unit_of_meas": "unit_of_measurement",
    "url_t": "url_topic", "url_tpl": "url_template", "val_tpl": "value_template",
    "whit_cmd_t": "white_command_topic", "whit_scl": "white_scale",
    "xy_cmd_t": "xy_command_topic", "xy_cmd_tpl": "xy_command_template",
    "xy_stat_t": "xy_state_topic", "xy_val_tpl": "xy_value_template",
}

# mqtt/abbreviations.py DEVICE_ABBREVIATIONS (keys inside "device"/"dev").
DEVICE_ABBREVIATIONS = {
    "cns": "connections", "cu": "configuration_url", "ids": "identifiers",
    "name": "name", "mf": "manufacturer", "mdl": "model", "mdl_id": "model_id",
    "hw": "hw_version", "sw": "sw_version", "sa": "suggested_area",
    "sn": "serial_number",
}

# mqtt/abbreviations.py ORIGIN_ABBREVIATIONS (keys inside "origin"/"o").
ORIGIN_ABBREVIATIONS = {"name": "name", "sw": "sw_version", "url": "support_url"}

# ---------------------------------------------------------------------------
# Required keys per component (full names), from the MQTT platform schemas:
#   mqtt/config.py  MQTT_RO_SCHEMA: state_topic required (sensor-like platforms)
#                   MQTT_RW_SCHEMA: command_topic required (switch-like platforms)
#   mqtt/event.py   RO schema + event_types required
#   mqtt/button.py  command_topic required
#   mqtt/select.py  RW schema + options required
#   mqtt/light/schema_basic.py / schema_json.py: RW schema (template schema
#                   also needs command_on_template/command_off_template)
#   mqtt/device_trigger.py TRIGGER_DISCOVERY_SCHEMA: automation_type, device,
#                   topic, type, subtype required; payload, value_template optional
# ---------------------------------------------------------------------------
REQUIRED_KEYS = {
    "sensor": {"state_topic"},
    "binary_sensor": {"state_topic"},
    "switch": {"command_topic"},
    "number": {"command_topic"},
    "button": {"command_topic"},
    "event": {"state_topic", "event_types"},
    "device_automation": {"automation_type", "device", "topic", "type", "subtype"},
    "select": {"command_topic", "options"},
    "light": {"command_topic"},
}

# mqtt/device_automation.py: the only automation type HA knows.
DEVICE_AUTOMATION_TYPES = {"trigger"}

# Unknown top-level keys: NOT checked.  Every MQTT DISCOVERY_SCHEMA is built
# with extra=vol.REMOVE_EXTRA, so HA silently drops keys it doesn't know
# rather than rejecting the payload, and the accepted-key set per platform is
# the union of several shared schemas (availability, device, json_attributes,
# entity common, ...) that we did not transcribe completely.

DEVICE_CLASSES_BY_COMPONENT = {
    "sensor": set(SENSOR_DEVICE_CLASS_UNITS),
    "binary_sensor": BINARY_SENSOR_DEVICE_CLASSES,
    "number": NUMBER_DEVICE_CLASSES,
    "event": EVENT_DEVICE_CLASSES,
    "switch": SWITCH_DEVICE_CLASSES,
    "button": BUTTON_DEVICE_CLASSES,
}


def _expand(mapping, abbrev):
    return {abbrev.get(k, k): v for k, v in mapping.items()}


def expand(payload):
    """Expand abbreviated keys the way mqtt/discovery.py does (top level,
    device, origin, and availability entries)."""
    out = _expand(payload, ABBREVIATIONS)
    if isinstance(out.get("device"), dict):
        out["device"] = _expand(out["device"], DEVICE_ABBREVIATIONS)
    if isinstance(out.get("origin"), dict):
        out["origin"] = _expand(out["origin"], ORIGIN_ABBREVIATIONS)
    if isinstance(out.get("availability"), list):
        out["availability"] = [
            _expand(a, ABBREVIATIONS) if isinstance(a, dict) else a
            for a in out["availability"]
        ]
    return out


def normalize_unit(unit):
    """HA's unit handling in mqtt/sensor.py: blank -> None, legacy micro sign
    spellings -> Greek mu."""
    if unit is None:
        return None
    if isinstance(unit, str) and not unit.strip():
        return None
    return AMBIGUOUS_UNITS.get(unit, unit)


def _fmt(units):
    return ", ".join(sorted(repr(u) for u in units))


def check(component, payload):
    """Return a list of human-readable problems HA would have with this
    discovery payload for `component` (empty list = HA accepts it cleanly)."""
    problems = []
    cfg = expand(payload)

    for key in sorted(REQUIRED_KEYS.get(component, ())):
        if cfg.get(key) in (None, ""):
            problems.append(f"REJECT: missing required key '{key}' for {component}")

    if component == "device_automation":
        at = cfg.get("automation_type")
        if at is not None and at not in DEVICE_AUTOMATION_TYPES:
            problems.append(f"REJECT: automation_type must be 'trigger', got {at!r}")
        if "device" in cfg and not isinstance(cfg["device"], dict):
            problems.append("REJECT: 'device' must be an object")

    dc = cfg.get("device_class")
    known = DEVICE_CLASSES_BY_COMPONENT.get(component)
    if dc is not None and known is not None:
        if not isinstance(dc, str) or dc.lower() not in known:
            problems.append(f"REJECT: unknown device_class {dc!r} for {component}")
            dc = None
        else:
            dc = dc.lower()   # HA applies vol.Lower before coercing
    elif dc is not None and known is None and component in REQUIRED_KEYS:
        problems.append(f"WARN: {component} has no device_class; HA silently drops the key")

    ec = cfg.get("entity_category")
    if ec is not None and ec not in ENTITY_CATEGORIES:
        problems.append(f"REJECT: entity_category {ec!r} not in {_fmt(ENTITY_CATEGORIES)}")

    if "suggested_display_precision" in cfg:
        sdp = cfg["suggested_display_precision"]
        if isinstance(sdp, bool) or not isinstance(sdp, int) or sdp < 0:
            problems.append(
                "REJECT: suggested_display_precision must be a non-negative integer, "
                f"got {sdp!r}")

    if component == "sensor":
        problems.extend(_check_sensor(cfg, dc))

    dev = cfg.get("device")
    name = cfg.get("name")
    if isinstance(dev, dict) and isinstance(name, str) and name:
        if name == dev.get("name"):
            problems.append(
                f"WARN: entity name equals device name ({name!r}); HA drops the "
                "entity name (sets it to null) and logs that this is not expected")
    return problems


def _check_sensor(cfg, dc):
    problems = []
    sc = cfg.get("state_class")
    unit = normalize_unit(cfg.get("unit_of_measurement"))
    options = cfg.get("options")

    if sc is not None:
        if not isinstance(sc, str) or sc.lower() not in STATE_CLASSES:
            problems.append(f"REJECT: unknown state_class {sc!r}")
            sc = None
        else:
            sc = sc.lower()

    if "last_reset_value_template" in cfg and sc != "total":
        problems.append("REJECT: last_reset_value_template needs state_class 'total'")

    if options is not None:
        if not options:
            problems.append("REJECT: empty options list")
        if sc or unit:
            problems.append("REJECT: options cannot be combined with state_class "
                            "or unit_of_measurement")
        if dc != "enum":
            problems.append("REJECT: options require device_class 'enum'")

    if sc in STATE_CLASS_UNITS and unit not in STATE_CLASS_UNITS[sc]:
        problems.append(f"REJECT: unit {unit!r} not valid with state_class {sc!r}; "
                        f"expected {_fmt(STATE_CLASS_UNITS[sc])}")

    if dc is not None:
        allowed_units = SENSOR_DEVICE_CLASS_UNITS[dc]
        if dc in SENSOR_NON_NUMERIC_DEVICE_CLASSES:
            if unit is not None:
                problems.append(f"BROKEN: device_class {dc!r} is non-numeric and must "
                                f"not have a unit (got {unit!r})")
            if sc is not None:
                problems.append(f"BROKEN: device_class {dc!r} is non-numeric and must "
                                f"not have a state_class (got {sc!r})")
        elif ANY_UNIT not in allowed_units and unit not in allowed_units:
            # Only a REJECT when a unit is given (HA >= 2025.7 mqtt/sensor.py);
            # a missing unit where one is expected only makes the sensor entity
            # log a warning, but we report both.
            kind = "REJECT" if unit is not None else "WARN"
            problems.append(f"{kind}: unit {unit!r} not valid for device_class {dc!r}; "
                            f"expected one of {_fmt(allowed_units)}")
        allowed_sc = SENSOR_DEVICE_CLASS_STATE_CLASSES.get(dc)
        if (sc is not None and allowed_sc is not None and sc not in allowed_sc
                and dc not in SENSOR_NON_NUMERIC_DEVICE_CLASSES):
            problems.append(f"WARN: state_class {sc!r} is impossible for device_class "
                            f"{dc!r}; expected None or one of {_fmt(allowed_sc)}")
    return problems


if __name__ == "__main__":
    DEV = {"ids": ["sg1"], "name": "Sensorgate"}

    def s(**kw):
        base = {"stat_t": "sg/x", "uniq_id": "x", "dev": DEV}
        base.update(kw)
        return check("sensor", base)

    # units: exact strings
    assert s(dev_cla="gas", unit_of_meas="m\u00b3", stat_cla="total_increasing") == []
    assert any("not valid" in p for p in s(dev_cla="gas", unit_of_meas="m3"))
    assert s(dev_cla="temperature", unit_of_meas="\u00b0C", stat_cla="measurement") == []
    assert any("not valid" in p for p in s(dev_cla="temperature", unit_of_meas="C"))
    # micro sign is normalised (portable); Greek mu is HA's own spelling
    assert s(dev_cla="pm25", unit_of_meas="\u00b5g/m\u00b3", stat_cla="measurement") == []
    assert s(dev_cla="pm25", unit_of_meas="\u03bcg/m\u00b3") == []
    assert any("not valid" in p for p in s(dev_cla="pm25", unit_of_meas="ug/m3"))
    # state classes
    assert s(dev_cla="energy", unit_of_meas="kWh", stat_cla="total_increasing") == []
    assert any("impossible" in p for p in
               s(dev_cla="energy", unit_of_meas="kWh", stat_cla="measurement"))
    assert any("impossible" in p for p in
               s(dev_cla="gas", unit_of_meas="m\u00b3", stat_cla="measurement"))
    assert s(stat_cla="measurement", unit_of_meas="widgets") == []   # no device class: fine
    assert any("non-numeric" in p for p in s(dev_cla="timestamp", stat_cla="measurement"))
    assert any("unknown state_class" in p for p in s(stat_cla="average"))
    assert any("suggested_display_precision" in p for p in s(sug_dsp_prc=-1))
    assert any("entity_category" in p for p in s(ent_cat="system"))
    assert any("equals device name" in p for p in s(name="Sensorgate"))
    # required keys
    assert any("state_topic" in p for p in check("sensor", {"uniq_id": "x"}))
    assert any("command_topic" in p for p in check("switch", {"stat_t": "a"}))
    assert any("event_types" in p for p in check("event", {"stat_t": "a"}))
    trig = {"atype": "trigger", "t": "sg/btn", "type": "button_short_press",
            "stype": "button_1", "dev": DEV}
    assert check("device_automation", trig) == []
    assert any("automation_type" in p for p in
               check("device_automation", dict(trig, atype="action")))
    assert any("unknown device_class" in p for p in
               check("binary_sensor", {"stat_t": "a", "dev_cla": "leak"}))
    print("ha_rules self-test: ok")
