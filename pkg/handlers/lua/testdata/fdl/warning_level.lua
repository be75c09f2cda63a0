-- warning_level.lua: new customers get a low-balance warning at 500 units.

function register()
  return { "pre_set_warning_level" }
end

function pre_set_warning_level(p)
  if (p == nil) then
    return {
      ref = "pre_set_warning_level",
      name = "Default warning level",
      description = "Sets the low-balance warning level of new customers",
      priority = 0,
      triggerType = "PRE_CREATE",
      triggerOptions = { "CUSTOMER" },
      api = "TRIGGER",
      version = 1,
    }
  end

  p.input:setWarningLevel(500)
  return { exitState = "SUCCESS" }
end
