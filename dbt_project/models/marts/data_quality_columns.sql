{#- One row per column of the input file, with how many values it holds: an entirely
    empty or constant column carries nothing to cluster on (the report says so). The
    columns of raw.customers are read from the warehouse when the model runs, so that
    extra columns, whatever their names, are profiled too. -#}
-- depends_on: {{ source('raw', 'customers') }}
{% set profiled = [] %}
{% if execute %}
    {% set profiled = adapter.get_columns_in_relation(source('raw', 'customers'))
        | rejectattr('name', 'equalto', 'source_row_number') | list %}
{% endif %}

with

load_columns as (

    select * from {{ source('raw', 'load_columns') }}

),

column_values as (

    {% if profiled %}
    -- missing spellings (empty, NA, N/A, …) count as missing, as in staging
    {{ column_value_counts(profiled, source('raw', 'customers')) }}
    {% else %}
    select
        cast(null as {{ dbt.type_string() }}) as loaded_as,
        cast(0 as bigint) as values_present,
        cast(0 as bigint) as distinct_values

    where false
    {% endif %}

),

final as (

    select
        load_columns.column_position,
        load_columns.column_name,
        load_columns.loaded_as,
        load_columns.required_column,
        load_columns.required_column is not null as is_required,
        cast(coalesce(column_values.values_present, 0) as bigint) as values_present,
        cast(coalesce(column_values.distinct_values, 0) as bigint) as distinct_values,
        coalesce(column_values.values_present, 0) = 0 as is_empty,
        coalesce(column_values.distinct_values, 0) = 1 as is_constant

    from load_columns
    left join column_values
        on load_columns.loaded_as = column_values.loaded_as

)

select * from final
