{#- The rows set aside, each with its reason, the rule and column it broke, and the
    offending value exactly as exported (a malformed record's raw text). The exported text
    is joined back from staging for these rows only: the validated table keeps typed values. -#}
{%- set decl = declaration() -%}
{%- set rules = quarantine_rules() -%}

with

validated as (

    select * from {{ ref('int_customers_validated') }}

),

exported as (

    select
        source_row_number,
        {%- for column in decl.columns %}
        source_{{ column.name }}{{ "," if not loop.last }}
        {%- endfor %}

    from {{ ref('stg_customers') }}

),

quarantined as (

    -- a malformed record has no fields: its text is source_line
    select
        validated.*,
        {%- for column in decl.columns %}
        exported.source_{{ column.name }}{{ "," if not loop.last }}
        {%- endfor %}

    from validated
    left join exported
        on validated.source_row_number = exported.source_row_number
    where validated.quarantine_reason is not null

),

final as (

    select
        source_row_number,
        customer_id,
        quarantine_reason,
        case
            when quarantine_reason in ('empty_row', 'malformed_row') then quarantine_reason
            when quarantine_reason = 'missing_customer_id' then 'missing_id'
            {%- for rule in rules %}
            when quarantine_reason = {{ sql_string(rule.reason) }} then {{ sql_string(rule.rule) }}
            {%- endfor %}
        end as rule,
        case
            when quarantine_reason = 'missing_customer_id' then 'customer_id'
            {%- for rule in rules %}
            when quarantine_reason = {{ sql_string(rule.reason) }} then {{ sql_string(rule.column.name) }}
            {%- endfor %}
        end as feature,
        case
            {%- for column in decl.columns if column.type == 'identifier' %}
            when quarantine_reason = 'missing_customer_id' then {{ sql_string(column.column) }}
            {%- endfor %}
            {%- for rule in rules %}
            when quarantine_reason = {{ sql_string(rule.reason) }} then {{ sql_string(rule.source.column) }}
            {%- endfor %}
        end as column_name,
        case
            when quarantine_reason = 'malformed_row' then source_line
            when quarantine_reason = 'missing_customer_id' then source_customer_id
            {%- for rule in rules %}
            when quarantine_reason = {{ sql_string(rule.reason) }} then source_{{ rule.source.name }}
            {%- endfor %}
        end as source_value,
        source_line_number,
        source_line
        {%- for column in decl.columns %},
        source_{{ column.name }}
        {%- endfor %}

    from quarantined

)

select * from final
